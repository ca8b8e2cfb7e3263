#!/usr/bin/env python3
"""Multi-process overlay test on loopback (issue 4).

20 supernodes (16 chorus-client processes in supernode mode and 4
chorus-bridge daemons) and 100 peers (chorus-client overlay processes with
handles), all real processes talking real UDP/TCP on 127.0.0.1:

  1. every peer logs in;
  2. every online handle is found online, every bridge's room is found,
     an unknown handle is answered "unknown";
  3. peers that logged out are answered "offline" with a last-seen time;
  4. churn: a third of the supernodes (7 of 20, bridges among them) are
     killed with SIGKILL; the peers they served re-attach and every
     online handle and the surviving bridges' rooms are still found.

Every wait is bounded; every process is killed at the end whatever happens.
  5. login authority (a separate small overlay): a supernode started with
     --authority admits a peer whose handle the authority certified and
     refuses one that is not certified.

Usage: test_overlay_procs.py CLIENT_BIN BRIDGE_BIN AUTHORITY_BIN
"""
import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

N_CLIENT_SUPERNODES = 16
N_BRIDGES = 4
N_PEERS = 100
N_QUERIERS = 5
DEADLINE = time.monotonic() + 280  # whole test, well under ctest's limit

random.seed(4)


def fail(msg):
    print("FAIL: " + msg, flush=True)
    raise SystemExit(1)


def left(cap):
    return max(0.1, min(cap, DEADLINE - time.monotonic()))


def free_port(kind=socket.SOCK_DGRAM, also_tcp=True):
    """A port free for UDP (and TCP) on loopback right now."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        ok = True
        if also_tcp:
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                ok = False
            t.close()
        s.close()
        if ok:
            return port
    fail("no free port")


class Proc:
    """A child whose stdout JSON lines land in a queue."""

    def __init__(self, name, argv, logdir):
        self.name = name
        self.log = open(os.path.join(logdir, name + ".err"), "w")
        self.out = open(os.path.join(logdir, name + ".out"), "w")
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.log, text=True, bufsize=1)
        self.q = queue.Queue()
        self.events = []
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for line in self.p.stdout:
            self.out.write(line)
            self.out.flush()
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                self.q.put(json.loads(line))
            except ValueError:
                pass
        self.q.put(None)

    def send(self, cmd):
        try:
            self.p.stdin.write(cmd + "\n")
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def next_event(self, timeout):
        try:
            ev = self.q.get(timeout=timeout)
        except queue.Empty:
            return None
        if ev is not None:
            self.events.append(ev)
        return ev

    def wait_event(self, pred, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ev = self.next_event(max(0.05, end - time.monotonic()))
            if ev is None and self.p.poll() is not None and self.q.empty():
                return None
            if ev is not None and pred(ev):
                return ev
        return None

    def kill(self, sig=signal.SIGKILL):
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
            except ProcessLookupError:
                pass


class Bridge:
    def __init__(self, i, bin_, root, bootstrap):
        self.i = i
        self.state = os.path.join(root, "bridge%d" % i)
        os.makedirs(self.state)
        self.ovl_port = free_port()
        self.media_port = free_port()
        self.api_port = free_port(socket.SOCK_STREAM, also_tcp=False)
        rtp_min = 42000 + i * 20
        self.room = "room-b%d" % i
        argv = [bin_, "--state-dir", self.state, "--media-addr", "127.0.0.1",
                "--media-port", str(self.media_port), "--api-addr", "127.0.0.1",
                "--api-port", str(self.api_port), "--rtp-port-min", str(rtp_min),
                "--rtp-port-max", str(rtp_min + 19), "--demo-room=" + self.room,
                "--no-realtime", "--overlay-port", str(self.ovl_port),
                "--advertise-ip", "127.0.0.1", "--role", "supernode",
                "--bootstrap", bootstrap]
        self.proc = Proc("bridge%d" % i, argv, root)
        self.token = None
        self.contact = None

    def api(self, path):
        if self.token is None:
            with open(os.path.join(self.state, "api-token")) as f:
                self.token = f.read().strip()
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.api_port, path),
                                     headers={"Authorization": "Bearer " + self.token})
        with urllib.request.urlopen(req, timeout=3) as r:
            return json.loads(r.read())

    def wait_overlay(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.p.poll() is not None:
                fail("bridge %d exited (%s)" % (self.i, self.proc.p.returncode))
            try:
                ov = self.api("/v1/overlay")
                if ov.get("logged_in"):
                    self.contact = "%s@127.0.0.1:%d" % (ov["public_key"], self.ovl_port)
                    return ov
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        fail("bridge %d did not join the overlay" % self.i)


def client_argv(bin_, *extra):
    # Operator-tunable timings shortened so that churn is noticed within
    # the test's bounds: keep-alives every 5 s, a silent supernode dead
    # after 15 s, and the host cache refreshed 1 s after login (a tenth of
    # --hostcache-refresh-s), so that a peer whose bootstrap contacts all
    # die has learnt others.
    return [bin_, "overlay", "--bind", "127.0.0.1", "--json", "--stdin",
            "--keepalive-s", "5", "--dead-after-s", "15", "--hostcache-refresh-s", "8",
            "--login-timeout", "60"] + list(extra)


def main():
    if len(sys.argv) != 4:
        fail("usage: test_overlay_procs.py CLIENT_BIN BRIDGE_BIN AUTHORITY_BIN")
    client_bin, bridge_bin, auth_bin = sys.argv[1], sys.argv[2], sys.argv[3]
    root = tempfile.mkdtemp(prefix="chorus-ovl-procs.")
    procs = []
    t0 = time.monotonic()
    try:
        authority(client_bin, auth_bin, root, procs)
        run(client_bin, bridge_bin, root, procs)
        print("PASS in %.1f s" % (time.monotonic() - t0), flush=True)
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            try:
                p.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if os.environ.get("KEEP_LOGS"):
            print("logs kept in " + root)
        else:
            shutil.rmtree(root, ignore_errors=True)


def start_supernode(client_bin, root, procs, name, bootstrap):
    port = free_port()
    argv = client_argv(client_bin, "--role", "supernode", "--port", str(port))
    if bootstrap:
        argv += ["--bootstrap", ",".join(bootstrap)]
    p = Proc(name, argv, root)
    procs.append(p)
    ready = p.wait_event(lambda e: e.get("event") == "ready", left(15))
    if not ready:
        fail(name + " never became ready")
    p.contact = ready["contact"]
    return p


def median_rss(procs):
    """Median VmRSS of live processes, as printed by /proc (figures only)."""
    kb = []
    for p in procs:
        try:
            with open("/proc/%d/status" % p.p.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        kb.append(int(line.split()[1]))
        except OSError:
            pass
    if not kb:
        return "?"
    kb.sort()
    return "%.1f MiB" % (kb[len(kb) // 2] / 1024.0)


def lookup_all(queriers, names, kind, timeout):
    """Asks every name once (spread over the queriers); returns name -> event."""
    cmd = "lookup" if kind == "handle" else "room"
    pending = {}
    for i, name in enumerate(names):
        q = queriers[i % len(queriers)]
        q.send("%s %s" % (cmd, name))
        pending.setdefault(q, set()).add(name)
    answers = {}
    end = time.monotonic() + timeout
    for q, want in pending.items():
        while want and time.monotonic() < end:
            ev = q.next_event(max(0.05, end - time.monotonic()))
            if ev is None:
                if q.p.poll() is not None:
                    fail("querier %s exited" % q.name)
                continue
            if ev.get("event") == "lookup" and ev.get("kind") == kind and ev["name"] in want:
                want.discard(ev["name"])
                answers[ev["name"]] = ev
    return answers


def lookup_until(queriers, names, kind, good, rounds, timeout):
    """Re-asks the names whose answer is not good(ev), up to @rounds times."""
    answers = {}
    todo = list(names)
    for _ in range(rounds):
        got = lookup_all(queriers, todo, kind, timeout)
        answers.update(got)
        todo = [n for n in todo if n not in got or not good(got[n])]
        if not todo:
            break
        time.sleep(1)
    return answers, todo


def authority(client_bin, auth_bin, root, procs):
    """Certified handle admitted, uncertified refused, by real processes."""
    def tool(*args):
        r = subprocess.run([auth_bin] + list(args), cwd=root, capture_output=True,
                           text=True, timeout=20)
        if r.returncode != 0:
            fail("chorus-authority %s: %s" % (args, r.stderr))
        return r.stdout.strip()

    auth = tool("keygen", "auth.key")
    node = tool("keygen", "alice.key")
    tool("sign", "auth.key", "--name", "alice", "--subject", node, "--out", "alice.cert")
    port = free_port()
    sn = Proc("auth-sn", client_argv(client_bin, "--role", "supernode", "--port", str(port),
                                     "--authority", auth), root)
    procs.append(sn)
    ready = sn.wait_event(lambda e: e.get("event") == "ready", left(15))
    if not ready:
        fail("authority supernode never became ready")
    good = Proc("auth-alice", client_argv(client_bin, "--handle", "alice", "--identity",
                                          os.path.join(root, "alice.key"), "--cert",
                                          os.path.join(root, "alice.cert"), "--authority",
                                          auth, "--bootstrap", ready["contact"]), root)
    bad = Proc("auth-mallory", client_argv(client_bin, "--handle", "alice", "--authority",
                                           auth, "--login-timeout", "6", "--bootstrap",
                                           ready["contact"]), root)
    procs += [good, bad]
    if not good.wait_event(lambda e: e.get("event") == "logged_in", left(20)):
        fail("the certified handle was not admitted")
    if bad.wait_event(lambda e: e.get("event") == "logged_in", left(10)):
        fail("an uncertified handle was admitted under a login authority")
    try:
        rc = bad.p.wait(timeout=left(10))
    except subprocess.TimeoutExpired:
        fail("the refused client did not give up")
    if rc != 3:
        fail("the refused client exited %d, wanted 3" % rc)
    print("login authority: certified handle admitted, uncertified refused (exit 3)",
          flush=True)
    for p in (sn, good):
        p.kill()


def run(client_bin, bridge_bin, root, procs):
    # 1. Supernodes: a seed, 15 more client supernodes, 4 bridges.
    seed = start_supernode(client_bin, root, procs, "sn0", [])
    sns = [seed]
    for i in range(1, N_CLIENT_SUPERNODES):
        boot = [s.contact for s in random.sample(sns, min(2, len(sns)))]
        sns.append(start_supernode(client_bin, root, procs, "sn%d" % i, boot))
    bridges = []
    for i in range(N_BRIDGES):
        b = Bridge(i, bridge_bin, root, ",".join([seed.contact, sns[1 + i].contact]))
        procs.append(b.proc)
        bridges.append(b)
    for b in bridges:
        ov = b.wait_overlay(left(30))
        if ov.get("role") != "supernode":
            fail("bridge %d role %s" % (b.i, ov.get("role")))
    all_sn = [s.contact for s in sns] + [b.contact for b in bridges]
    print("20 supernodes up after %.1f s" % (time.monotonic() - (DEADLINE - 280)), flush=True)

    # 2. 100 peers, each bootstrapped with 3 random supernodes.
    peers = []
    for i in range(N_PEERS):
        boot = random.sample(all_sn, 3)
        p = Proc("peer%d" % i, client_argv(client_bin, "--handle", "user%d" % i,
                                           "--bootstrap", ",".join(boot)), root)
        p.handle = "user%d" % i
        procs.append(p)
        peers.append(p)
    for p in peers:
        ev = p.wait_event(lambda e: e.get("event") == "logged_in", left(60))
        if not ev:
            fail("%s did not log in" % p.handle)
        p.supernode = ev.get("supernode")
    print("100 peers logged in after %.1f s" % (time.monotonic() - (DEADLINE - 280)),
          flush=True)

    # Rooms: each bridge published its room (give the stores a moment).
    for b in bridges:
        for _ in range(50):
            if b.api("/v1/overlay").get("dht", {}).get("records", 0) >= 1:
                break
            time.sleep(0.2)

    print("resident memory (median): peer %s, client supernode %s, bridge %s" %
          (median_rss(peers), median_rss(sns), median_rss([b.proc for b in bridges])),
          flush=True)

    queriers = peers[:N_QUERIERS]
    handles = [p.handle for p in peers]
    online = lambda e: e.get("state") == "online"
    ans, missing = lookup_until(queriers, handles, "handle", online, 3, left(40))
    if missing:
        fail("handles not found online: %s" % missing[:10])
    for p in peers:
        if ans[p.handle].get("supernode") is None:
            fail("%s online without its supernode" % p.handle)
    rounds = sorted(a.get("rounds", 0) for a in ans.values())
    us = sorted(a.get("us", 0) for a in ans.values())
    print("100/100 handles online; rounds p50 %d max %d; answer time p50 %.1f ms "
          "p99 %.1f ms" % (rounds[len(rounds) // 2], rounds[-1], us[len(us) // 2] / 1000.0,
                           us[min(len(us) - 1, len(us) * 99 // 100)] / 1000.0), flush=True)

    rooms = [b.room for b in bridges]
    ans, missing = lookup_until(queriers, rooms, "room", online, 5, left(20))
    if missing:
        fail("rooms not found: %s" % missing)
    for b in bridges:
        addrs = ans[b.room].get("addrs", [])
        if "127.0.0.1:%d" % b.media_port not in addrs:
            fail("room %s points at %s, not media port %d" % (b.room, addrs, b.media_port))
    print("4/4 rooms found at their bridges' media ports", flush=True)

    ans = lookup_all(queriers, ["nosuch-user-42"], "handle", left(15))
    if ans.get("nosuch-user-42", {}).get("state") != "unknown":
        fail("unknown handle answered %s" % ans.get("nosuch-user-42"))
    print("unknown handle answered unknown", flush=True)

    # 3. Five peers log out gracefully.
    gone = peers[-5:]
    for p in gone:
        p.send("logout")
    for p in gone:
        if not p.wait_event(lambda e: e.get("event") == "logged_out", left(10)):
            fail("%s did not log out" % p.handle)
    t_out = time.time()
    offline = lambda e: e.get("state") == "offline"
    # A supernode may answer from its lookup cache for cache_ttl (20 s,
    # docs/protocol.md 4.5) after the earlier lookups: ask until then.
    ans, missing = lookup_until(queriers, [p.handle for p in gone], "handle", offline,
                                30, left(10))
    if missing:
        fail("logged-out handles not offline: %s" % [(n, ans.get(n, {}).get("state"))
                                                      for n in missing])
    for p in gone:
        ls = ans[p.handle].get("last_seen")
        if ls is None or abs(ls - t_out) > 60:
            fail("%s last seen %s, logged out at %d" % (p.handle, ls, t_out))
    print("5/5 logged-out handles offline with last-seen", flush=True)

    # 4. Churn: kill 7 of 20 supernodes (5 client supernodes chosen at
    # random, 2 bridges); peers whose supernode dies must re-attach.
    victims_sn = random.sample(sns[1:], 5)
    victims_br = bridges[:2]
    dead = set(s.contact for s in victims_sn) | set(b.contact for b in victims_br)
    live_peers = peers[:-5]
    for p in live_peers:
        # The latest attachment counts: a peer may have moved since login.
        while True:
            ev = p.next_event(0)
            if ev is None:
                break
            if ev.get("event") == "logged_in":
                p.supernode = ev.get("supernode")
    for s in victims_sn:
        s.kill()
    for b in victims_br:
        b.proc.kill()
    orphans = [p for p in live_peers if p.supernode in dead]
    print("killed 7 supernodes; %d peers lost theirs" % len(orphans), flush=True)
    for p in orphans:
        ev = p.wait_event(lambda e: e.get("event") == "logged_in" and
                          e.get("supernode") not in dead, left(60))
        if not ev:
            fail("%s did not re-attach" % p.handle)
    print("%d orphaned peers re-attached" % len(orphans), flush=True)
    live_q = [q for q in queriers if q in live_peers]
    ans, missing = lookup_until(live_q, [p.handle for p in live_peers], "handle",
                                online, 4, left(60))
    if missing:
        fail("after churn, handles not found: %s" % missing[:10])
    print("after churn: %d/%d handles online" % (len(live_peers), len(live_peers)),
          flush=True)
    rooms = [b.room for b in bridges[2:]]
    ans, missing = lookup_until(live_q, rooms, "room", online, 5, left(30))
    if missing:
        fail("after churn, rooms not found: %s" % missing)
    print("after churn: surviving bridges' rooms found", flush=True)


if __name__ == "__main__":
    main()
