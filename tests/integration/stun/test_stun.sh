#!/bin/bash
# test_stun.sh: STUN and NAT discovery against real tools and real NATs.
#
#   test_stun.sh loopback BRIDGE STUN_LAB SHIM
#       coturn's turnutils_stunclient asks a running chorus-bridge (media
#       port, 127.0.0.1, and its overlay port: the bridge is a supernode)
#       for its reflexive address; it must be the client's own
#       127.0.0.1:port. Malformed STUN must count as rx_invalid and get
#       no answer.
#
#   test_stun.sh natlab BRIDGE STUN_LAB SHIM [CLIENT]
#       A network-namespace NAT lab (after /work/shared/LAB.md's natlab.sh):
#         [a 10.0.1.2]--lan--[r1 10.0.1.1 | wan 203.0.113.11]--br0--[inet 203.0.113.1/.2/.3]
#       1. turnutils_stunclient in a gets r1's WAN address from the bridge.
#       2. The ovl_nat classifier (stun_lab probe) in a, against an RFC 5780
#          server (stun_lab server on .1/.2 x 3478/3479), names r1's type in
#          each mode: cone, symmetric, fullcone, restricted, udp-block; and
#          "open"/"firewalled" for a host without NAT.
#       3. coturn's turnutils_natdiscovery agrees with that server.
#       4. With CLIENT (chorus-client): NAT discovery through the overlay.
#          Two supernodes in inet (203.0.113.1:34001, 203.0.113.2:34002);
#          a peer in a logs in with both as bootstrap and runs --nat: r1
#          cone -> "cone", symmetric -> "symmetric", udp-block -> logged in
#          over TCP and "udp-blocked", one known supernode -> "unknown"; a
#          peer on 203.0.113.3 -> "open". The reflexive address is checked
#          against r1's conntrack table, and a second peer in inet looks the
#          handle up: its presence must carry r1's WAN mapping of the
#          peer's overlay socket (over a TCP login and over a UDP login).
#       Needs root and `ip netns`; skips (exit 77) with a reason otherwise.
#
# Every wait is bounded; everything started is killed by PID and every
# namespace deleted on exit, whatever happened.
set -uo pipefail

MODE=${1:-}
BRIDGE=${2:-}
LAB=${3:-}
SHIM=${4:-}
CLIENT=${5:-}
SKIP=77
FAILS=0
PIDS=()
NETNS=()
TMP=$(mktemp -d "${TMPDIR:-/tmp}/chorus-stun.XXXXXX")

cleanup() {
    local p n
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for n in "${NETNS[@]}"; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

skip() { echo "SKIP: $*"; exit $SKIP; }
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }

[ -x "$BRIDGE" ] && [ -x "$LAB" ] && [ -f "$SHIM" ] || {
    echo "usage: $0 loopback|natlab BRIDGE STUN_LAB SHIM [CLIENT]" >&2; exit 2; }
command -v turnutils_stunclient >/dev/null ||
    skip "turnutils_stunclient not found (coturn; scripts/install-deps.sh installs it)"

# wait_for FILE PATTERN SECONDS PID: until FILE has PATTERN; fails early if
# PID died.
wait_for() {
    local end=$((SECONDS + $3))
    while [ $SECONDS -lt $end ]; do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$4" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stunclient OUTPREFIX [ip netns exec NS] ARGS...: runs turnutils_stunclient
# with the shim; prints "REFLEXIVE LOCAL" (either may be empty).
stunclient() {
    local out=$1; shift
    "$@" >"$out.out" 2>"$out.err"
    local refl local_addr
    refl=$(grep -m1 -o 'UDP reflexive addr: [^ ]*' "$out.out" | awk '{print $4}')
    local_addr=$(grep -m1 -o 'chorus-shim: local [^ ]*' "$out.err" | awk '{print $3}')
    echo "${refl:-none} ${local_addr:-none}"
}

# ---------------------------------------------------------------------------
loopback() {
    local base port api state log pid attempt res refl loc
    state=$TMP/state
    log=$TMP/bridge.log
    for attempt in 0 1 2 3 4 5; do
        base=$((20000 + ($$ * 7 + attempt * 977) % 20000))
        port=$base; api=$((base + 1))
        mkdir -p "$state"
        timeout 120 "$BRIDGE" --state-dir "$state" --media-addr 127.0.0.1 --media-port $port \
            --api-addr 127.0.0.1 --api-port $api --rtp-port-min $((base + 2)) \
            --rtp-port-max $((base + 9)) --demo-room= --no-realtime \
            --overlay-port $((base + 10)) >"$log" 2>&1 &
        pid=$!
        if wait_for "$log" 'bridge: ready' 10 $pid; then
            PIDS+=($pid)
            break
        fi
        kill $pid 2>/dev/null; wait $pid 2>/dev/null
        pid=
    done
    [ -n "$pid" ] || { echo "FAIL bridge did not start:"; cat "$log"; exit 1; }
    echo "bridge: media 127.0.0.1:$port (pid $pid)"

    # a. The standard client; -L makes it bind 127.0.0.1 so the shim sees
    #    the exact local address.
    for i in 1 2 3; do
        res=$(stunclient "$TMP/sc$i" env LD_PRELOAD="$SHIM" timeout 10 \
              turnutils_stunclient -L 127.0.0.1 -p $port 127.0.0.1)
        read -r refl loc <<<"$res"
        echo "turnutils_stunclient: $(grep -m1 'reflexive' "$TMP/sc$i.out")"
        if [ "$refl" != none ] && [ "$refl" = "$loc" ]; then
            pass "loopback $i: reflexive $refl == client's own $loc"
        else
            fail "loopback $i: reflexive '$refl', client's own '$loc'"
            cat "$TMP/sc$i.out" "$TMP/sc$i.err"
        fi
    done

    # a2. The bridge is a supernode (the seed of its own overlay): its
    #     overlay port answers the same standard client.
    local ovl=$((base + 10))
    wait_for "$log" 'ovl: logged in' 10 $pid ||
        fail "the bridge's overlay node did not come up"
    res=$(stunclient "$TMP/sco" env LD_PRELOAD="$SHIM" timeout 10 \
          turnutils_stunclient -L 127.0.0.1 -p $ovl 127.0.0.1)
    read -r refl loc <<<"$res"
    if [ "$refl" != none ] && [ "$refl" = "$loc" ]; then
        pass "overlay port $ovl (supernode): reflexive $refl == client's own $loc"
    else
        fail "overlay port $ovl: reflexive '$refl', client's own '$loc'"
        cat "$TMP/sco.out" "$TMP/sco.err"
    fi

    # b. Nothing is answered that should not be, and the counters say so.
    local token metrics_before metrics_after
    token=$(cat "$state/api-token")
    metric() {
        curl -s --max-time 5 -H "Authorization: Bearer $token" \
            "http://127.0.0.1:$api/metrics" | awk -v m="$1" '$1 == m {print $2}'
    }
    local inv0 unk0 inv1 unk1
    inv0=$(metric chorus_rx_invalid_total); unk0=$(metric chorus_rx_unknown_total)
    timeout 10 python3 - "$port" <<'PY'
import socket, struct, sys, zlib
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0)); s.settimeout(0.5)
tx = b"chorus-tx-id"
def fp(msg):  # append FINGERPRINT (RFC 8489 14.7)
    msg = msg[:2] + struct.pack("!H", len(msg) - 20 + 8) + msg[4:]
    return msg + struct.pack("!HHI", 0x8028, 4, (zlib.crc32(msg) ^ 0x5354554E) & 0xFFFFFFFF)
hdr = lambda t: struct.pack("!HHI", t, 0, 0x2112A442) + tx
bad_fp = bytearray(fp(hdr(0x0001))); bad_fp[-1] ^= 1
cases = [("bad fingerprint", bytes(bad_fp)),
         ("binding indication", fp(hdr(0x0011))),
         ("binding response", fp(hdr(0x0101))),
         ("TURN allocate", fp(hdr(0x0003)))]
ok = True
for name, msg in cases:
    s.sendto(msg, ("127.0.0.1", port))
    try:
        data, _ = s.recvfrom(2048)
        print(f"FAIL {name}: answered with {len(data)} bytes"); ok = False
    except socket.timeout:
        print(f"PASS {name}: no answer")
# And a valid request still works: success class, our transaction id.
s.sendto(fp(hdr(0x0001)), ("127.0.0.1", port))
data, _ = s.recvfrom(2048)
good = data[:2] == b"\x01\x01" and data[8:20] == tx
print(("PASS" if good else "FAIL") + f" valid request answered ({len(data)} bytes)")
sys.exit(0 if ok and good else 1)
PY
    [ $? -eq 0 ] || fail "python STUN probes"
    inv1=$(metric chorus_rx_invalid_total); unk1=$(metric chorus_rx_unknown_total)
    if [ -n "$inv0" ] && [ $((inv1 - inv0)) -eq 1 ] && [ $((unk1 - unk0)) -eq 3 ]; then
        pass "counters: rx_invalid +$((inv1 - inv0)), rx_unknown +$((unk1 - unk0))"
    else
        fail "counters: rx_invalid $inv0 -> $inv1 (want +1), rx_unknown $unk0 -> $unk1 (want +3)"
    fi
}

# ---------------------------------------------------------------------------
P=chst$$
x() { ip netns exec "$P-$1" "${@:2}"; }

# Namespaces of an earlier run that was killed outright (SIGKILL leaves no
# chance to clean up): chst<PID>-* whose PID is gone.
reap_stale() {
    local n pid
    for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^chst[0-9]+-'); do
        pid=${n#chst}; pid=${pid%%-*}
        kill -0 "$pid" 2>/dev/null || ip netns del "$n" 2>/dev/null
    done
}

lab_up() {
    local n
    reap_stale
    for n in inet r1 a; do
        ip netns add "$P-$n" || return 1
        NETNS+=("$P-$n")
        ip -n "$P-$n" link set lo up
    done
    ip -n "$P-inet" link add br0 type bridge
    ip -n "$P-inet" addr add 203.0.113.1/24 dev br0
    ip -n "$P-inet" addr add 203.0.113.2/24 dev br0
    ip -n "$P-inet" addr add 203.0.113.3/24 dev br0
    ip -n "$P-inet" link set br0 up
    ip link add wan netns "$P-r1" type veth peer name r1up netns "$P-inet"
    ip -n "$P-inet" link set r1up master br0 up
    ip -n "$P-r1" addr add 203.0.113.11/24 dev wan
    ip -n "$P-r1" link set wan up
    ip link add lan netns "$P-r1" type veth peer name eth0 netns "$P-a"
    ip -n "$P-r1" addr add 10.0.1.1/24 dev lan
    ip -n "$P-r1" link set lan up
    ip -n "$P-a" addr add 10.0.1.2/24 dev eth0
    ip -n "$P-a" link set eth0 up
    ip -n "$P-a" route add default via 10.0.1.1
    x r1 sysctl -qw net.ipv4.ip_forward=1
    # LAB.md's NAT quirk: drop unsolicited packets to the router itself, or
    # an early inbound packet's conntrack entry changes the later mapping.
    x r1 iptables -A INPUT -i wan -m conntrack --ctstate NEW -j DROP
}

# nat MODE: r1's behaviour (LAB.md's natlab.sh, plus "restricted").
nat() {
    x r1 iptables -t nat -F
    x r1 iptables -F FORWARD
    command -v conntrack >/dev/null && x r1 conntrack -F >/dev/null 2>&1
    case $1 in
    cone)       # port-preserving, endpoint-independent mapping,
                # address-and-port-dependent filtering
        x r1 iptables -t nat -A POSTROUTING -o wan -j MASQUERADE ;;
    symmetric)  # a random port per destination
        x r1 iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully ;;
    fullcone)   # every inbound UDP port forwarded to a
        x r1 iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
        x r1 iptables -t nat -A PREROUTING -i wan -p udp -j DNAT --to-destination 10.0.1.2 ;;
    restricted) # full cone, but inbound only from IPs a has sent to
        x r1 iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
        x r1 iptables -t nat -A PREROUTING -i wan -p udp -j DNAT --to-destination 10.0.1.2
        x r1 iptables -A FORWARD -i lan -o wan -p udp -m recent --name chorus_out --rdest --set
        x r1 iptables -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
        x r1 iptables -A FORWARD -i wan -o lan -p udp -m recent --name chorus_out --rsource \
            --rcheck --seconds 120 -j ACCEPT
        x r1 iptables -A FORWARD -i wan -o lan -p udp -j DROP ;;
    udp-block)  # outbound UDP dropped
        x r1 iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
        x r1 iptables -A FORWARD -i lan -o wan -p udp -j DROP ;;
    *) return 2 ;;
    esac
}

# probe NS LOCAL: the classifier's one-line verdict (or the error).
probe() {
    x "$1" timeout 30 "$LAB" probe --local "$2" --server 203.0.113.1:3478 \
        --rto 100 --rc 3 --rm 4 --timeout 20 2>&1
}

natlab() {
    [ "$(id -u)" = 0 ] || skip "not root: the NAT lab needs network namespaces"
    ip netns list >/dev/null 2>&1 || skip "'ip netns' is unavailable"
    command -v iptables >/dev/null || skip "iptables not found (scripts/install-deps.sh)"
    lab_up || { echo "FAIL could not build the lab"; exit 1; }
    x r1 iptables -t nat -L >/dev/null 2>&1 || skip "iptables NAT does not work here"

    local blog=$TMP/bridge.log slog=$TMP/server.log bpid spid
    mkdir -p "$TMP/state"
    # Not through x(): a background function would fork a bash, and $! would
    # not be the process to kill (LAB.md).
    ip netns exec "$P-inet" timeout 300 "$BRIDGE" --state-dir "$TMP/state" --media-addr 203.0.113.1 \
        --media-port 33033 --api-addr 127.0.0.1 --api-port 33034 --rtp-port-min 33040 \
        --rtp-port-max 33049 --demo-room= --no-realtime --no-overlay >"$blog" 2>&1 &
    bpid=$!; PIDS+=($bpid)
    ip netns exec "$P-inet" timeout 300 "$LAB" server --ip 203.0.113.1 --ip 203.0.113.2 --port 3478 \
        --port 3479 --for 280 >"$slog" 2>&1 &
    spid=$!; PIDS+=($spid)
    wait_for "$blog" 'bridge: ready' 10 $bpid || { echo "FAIL bridge:"; cat "$blog"; exit 1; }
    wait_for "$slog" 'serving' 10 $spid || { echo "FAIL server:"; cat "$slog"; exit 1; }

    # 1. Reflexive address through r1, from the bridge's media port.
    local mode res refl loc
    for mode in cone symmetric; do
        nat $mode
        res=$(stunclient "$TMP/nat-$mode" ip netns exec "$P-a" env LD_PRELOAD="$SHIM" \
              timeout 10 turnutils_stunclient -L 10.0.1.2 -p 33033 203.0.113.1)
        read -r refl loc <<<"$res"
        echo "turnutils_stunclient in a ($mode): $(grep -m1 'reflexive' "$TMP/nat-$mode.out")"
        case $mode:$refl in
        cone:203.0.113.11:"${loc##*:}")
            pass "natlab cone: reflexive $refl = r1's WAN address, a's port ${loc##*:} kept" ;;
        symmetric:203.0.113.11:*)
            pass "natlab symmetric: reflexive $refl = r1's WAN address (a sent from $loc)" ;;
        *)  fail "natlab $mode: reflexive '$refl', a's own '$loc'"
            cat "$TMP/nat-$mode.out" "$TMP/nat-$mode.err" ;;
        esac
    done

    # 2. The classifier, one fresh local port per mode.
    local want got out lport=41000
    for mode in cone symmetric fullcone restricted udp-block; do
        if ! nat $mode 2>"$TMP/nat.err"; then
            if [ $mode = restricted ]; then
                echo "SKIP natlab restricted: iptables 'recent' match unavailable: $(cat "$TMP/nat.err")"
                continue
            fi
            fail "natlab: cannot set mode $mode: $(cat "$TMP/nat.err")"
            continue
        fi
        case $mode in
        cone) want=port-restricted ;;
        symmetric) want=symmetric ;;
        fullcone) want=full-cone ;;
        restricted) want=restricted ;;
        udp-block) want=udp-blocked ;;
        esac
        lport=$((lport + 1))
        out=$(probe a 10.0.1.2:$lport)
        got=$(sed -n 's/^nat: type=\([^ ]*\).*/\1/p' <<<"$out")
        echo "ovl_nat in a ($mode): $out"
        [ "$got" = "$want" ] && pass "classifier: r1 $mode -> $got" ||
            fail "classifier: r1 $mode -> '$got', want $want"
    done
    # No NAT: a probe on the public side (203.0.113.3), open, then behind a
    # stateful firewall that drops unsolicited inbound UDP.
    out=$(probe inet 203.0.113.3:41100)
    got=$(sed -n 's/^nat: type=\([^ ]*\).*/\1/p' <<<"$out")
    echo "ovl_nat on 203.0.113.3 (no NAT): $out"
    [ "$got" = open ] && pass "classifier: public host -> open" ||
        fail "classifier: public host -> '$got', want open"
    x inet iptables -A INPUT -d 203.0.113.3 -p udp -m conntrack --ctstate NEW -j DROP
    out=$(probe inet 203.0.113.3:41101)
    got=$(sed -n 's/^nat: type=\([^ ]*\).*/\1/p' <<<"$out")
    echo "ovl_nat on 203.0.113.3 (firewall): $out"
    [ "$got" = firewalled ] && pass "classifier: firewalled host -> firewalled" ||
        fail "classifier: firewalled host -> '$got', want firewalled"
    x inet iptables -F INPUT

    # 3. coturn's RFC 5780 client against stun_lab's RFC 5780 server.
    if command -v turnutils_natdiscovery >/dev/null; then
        for mode in cone symmetric; do
            nat $mode
            lport=$((lport + 1))
            x a timeout 30 turnutils_natdiscovery -m -f -L 10.0.1.2 -l $lport -p 3478 \
                203.0.113.1 >"$TMP/nd-$mode.out" 2>&1
            grep -E 'Mapping|Filtering' "$TMP/nd-$mode.out" | grep -v '^$' |
                sed "s/^/turnutils_natdiscovery ($mode): /" | sort -u
            case $mode in
            cone) grep -q 'Endpoint Independent Mapping' "$TMP/nd-$mode.out" &&
                  grep -q 'Address and Port Dependent Filtering' "$TMP/nd-$mode.out" ;;
            symmetric) grep -q 'Address and Port Dependent Mapping' "$TMP/nd-$mode.out" ;;
            esac && pass "turnutils_natdiscovery agrees ($mode)" ||
                { fail "turnutils_natdiscovery ($mode)"; cat "$TMP/nd-$mode.out"; }
        done
    fi

    # 4. NAT discovery through the overlay.
    if [ -n "$CLIENT" ] && [ -x "$CLIENT" ]; then
        overlay_nat
    else
        echo "SKIP overlay NAT discovery: no chorus-client given"
    fi
}

# ---------------------------------------------------------------------------
# 4. NAT discovery through the overlay: chorus-client overlay in the lab.

# jget FILE EVENT KEY: KEY of the first JSON line of kind EVENT in FILE; a
# list comes out comma-separated, null as "null", nothing as "".
jget() {
    python3 - "$@" <<'PY' 2>/dev/null
import json, sys
path, ev, key = sys.argv[1:4]
for line in open(path, errors="replace"):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if isinstance(o, dict) and o.get("event") == ev:
        v = o.get(key)
        print(",".join(map(str, v)) if isinstance(v, list) else "null" if v is None else v)
        break
PY
}

# ct_udp: r1's UDP conntrack entries, one a line:
#   ORIG_SRC:PORT ORIG_DST:PORT REPLY_DST:PORT   (the last is r1's mapping)
ct_udp() {
    command -v conntrack >/dev/null || return 0
    x r1 conntrack -L -p udp 2>/dev/null | awk '{
        split("", o); split("", r)
        for (i = 1; i <= NF; i++)
            if (split($i, kv, "=") == 2) {
                if (!(kv[1] in o)) o[kv[1]] = kv[2]
                else if (!(kv[1] in r)) r[kv[1]] = kv[2]
            }
        if (o["src"] != "" && r["dst"] != "")
            print o["src"] ":" o["sport"], o["dst"] ":" o["dport"], r["dst"] ":" r["dport"] }'
}

# ovl_start NS LOG SECONDS ARGS...: chorus-client overlay --json ARGS in NS,
# in the background, at most SECONDS; OPID is its PID. Not a subshell: $!
# must be the process to kill (timeout, which passes SIGTERM on, and the
# client then logs out gracefully).
ovl_start() {
    local ns=$1 log=$2 t=$3
    shift 3
    ip netns exec "$P-$ns" timeout -k 3 "$t" "$CLIENT" overlay --json "$@" >"$log" 2>&1 &
    OPID=$!
    PIDS+=($OPID)
}

ovl_stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# ovl_lookup NAME LOG: a second peer on 203.0.113.3 (no NAT) looks NAME up
# through supernode 2; prints "STATE ADDRS" (ADDRS comma-separated).
ovl_lookup() {
    ip netns exec "$P-inet" timeout -k 3 25 "$CLIENT" overlay --json --bind 203.0.113.3 \
        --bootstrap "$K2" --login-timeout 10 --lookup "$1" >"$2" 2>&1
    echo "$(jget "$2" lookup state) $(jget "$2" lookup addrs)"
}

# want_nat MODE LOG TYPE MAPPING: checks the peer's nat event.
want_nat() {
    local t m f
    t=$(jget "$2" nat type); m=$(jget "$2" nat mapping); f=$(jget "$2" nat filtering)
    echo "overlay peer ($1): $(grep -m1 '"event":"nat"' "$2")"
    if [ "$t" = "$3" ] && [ "$m" = "$4" ] && [ "$f" = unknown ]; then
        pass "overlay $1: type $t, mapping $m, filtering $f"
    else
        fail "overlay $1: type '$t' mapping '$m' filtering '$f', want $3, $4, unknown"
        cat "$2"
    fi
}

overlay_nat() {
    local K1 K2 s1log=$TMP/sn1.log s2log=$TMP/sn2.log p1 p2 t0=$SECONDS
    ip netns exec "$P-inet" timeout -k 3 200 "$CLIENT" overlay --json --role supernode \
        --bind 203.0.113.1 --port 34001 >"$s1log" 2>&1 &
    p1=$!; PIDS+=($p1)
    wait_for "$s1log" '"event":"ready"' 10 $p1 ||
        { fail "overlay: supernode 1 did not start"; cat "$s1log"; return; }
    K1=$(jget "$s1log" ready contact)
    ip netns exec "$P-inet" timeout -k 3 200 "$CLIENT" overlay --json --role supernode \
        --bind 203.0.113.2 --port 34002 --bootstrap "$K1" >"$s2log" 2>&1 &
    p2=$!; PIDS+=($p2)
    wait_for "$s2log" '"event":"logged_in"' 10 $p2 ||
        { fail "overlay: supernode 2 did not start"; cat "$s2log"; return; }
    K2=$(jget "$s2log" ready contact)
    echo "overlay: supernodes $K1 and $K2"

    # a. Behind cone and symmetric r1: the type, the reflexive address
    #    (r1's mapping of the probe socket towards the supernode, by
    #    conntrack), and the handle's presence seen from outside.
    local mode log pid sn other refl oport omap ctl l m2 res state addrs ok
    for mode in cone symmetric cone-udp-login; do
        nat ${mode%-udp-login}
        # No TCP through r1: the login ladder ends with LOGIN over UDP.
        [ $mode = cone-udp-login ] &&
            x r1 iptables -A FORWARD -i lan -o wan -p tcp -j REJECT --reject-with tcp-reset
        log=$TMP/ovl-$mode.log
        ovl_start a "$log" 60 --bootstrap "$K1,$K2" --handle "nl$$-$mode" --nat \
            --login-timeout 15 --stay 30
        pid=$OPID
        if ! wait_for "$log" '"event":"nat"' 20 $pid ||
           ! wait_for "$log" '"event":"published"' 5 $pid; then
            fail "overlay $mode: no NAT result or no presence published"; cat "$log"
            ovl_stop $pid; continue
        fi
        ctl=$(ct_udp)
        case $mode in
        symmetric) want_nat $mode "$log" symmetric address-dependent ;;
        *) want_nat $mode "$log" cone endpoint-independent ;;
        esac
        refl=$(jget "$log" nat reflexive)
        oport=$(jget "$log" ready port)
        sn=$(jget "$log" logged_in supernode); sn=${sn#*@}
        other=${K1#*@}; [ "$other" = "$sn" ] && other=${K2#*@}
        # The probe socket: the entry towards the supernode that r1 maps
        # to the reflexive address. It is not the overlay socket (5.4).
        l=$(awk -v d="$sn" -v m="$refl" '$2 == d && $3 == m {print $1; exit}' <<<"$ctl")
        m2=$(awk -v s="$l" -v d="$other" '$1 == s && $2 == d {print $3; exit}' <<<"$ctl")
        # Towards the other supernode (test IV) the same socket got another
        # mapping (symmetric) or the same one, port kept (cone: MASQUERADE).
        ok=0
        if [ $mode = symmetric ]; then
            [ "$m2" != "$refl" ] && ok=1
        else
            [ "$m2" = "$refl" ] && [ "${l##*:}" = "${refl##*:}" ] && ok=1
        fi
        if [ -z "$ctl" ]; then
            case $refl in
            203.0.113.11:*) pass "overlay $mode: reflexive $refl on r1's WAN address (no conntrack)" ;;
            *) fail "overlay $mode: reflexive '$refl', want 203.0.113.11:*" ;;
            esac
        elif [ $ok = 1 ] && [ -n "$l" ] && [ "$l" != "10.0.1.2:$oport" ] && [ -n "$m2" ] &&
             [ "${refl%:*}" = 203.0.113.11 ]; then
            pass "overlay $mode: reflexive $refl = r1's mapping of a's probe socket $l to $sn (to $other: $m2)"
        else
            fail "overlay $mode: reflexive '$refl' (probe socket '$l', to $other '$m2'); r1's UDP entries:"
            echo "$ctl"
        fi
        omap=$(awk -v s="10.0.1.2:$oport" -v d="$sn" '$1 == s && $2 == d {print $3; exit}' <<<"$ctl")
        res=$(ovl_lookup "nl$$-$mode" "$TMP/lookup-$mode.log")
        read -r state addrs <<<"$res"
        echo "overlay: lookup nl$$-$mode from 203.0.113.3: $state [$addrs];" \
             "r1 maps a's overlay socket 10.0.1.2:$oport to '$omap' towards $sn"
        if [ "$state" != online ]; then
            fail "overlay $mode: lookup '$state', want online"; cat "$TMP/lookup-$mode.log"
        elif [ $mode = cone-udp-login ]; then
            # 4.3's order: the address the supernode sees, then our own.
            [ -n "$omap" ] && [ "$addrs" = "$omap,10.0.1.2:$oport" ] &&
                pass "overlay $mode: presence [$addrs] = r1's WAN mapping of the overlay socket, then a's own" ||
                fail "overlay $mode: presence [$addrs], want [$omap,10.0.1.2:$oport]"
        elif [ $mode = cone ]; then
            case ",$addrs," in
            ,,*|*",$omap,"*) [ -n "$omap" ] && [ -n "$addrs" ] &&
                pass "overlay $mode: presence [$addrs] carries r1's WAN mapping $omap of the overlay socket" ||
                fail "overlay $mode: presence [$addrs], r1's mapping of the overlay socket '$omap'" ;;
            *) fail "overlay $mode (TCP login): presence [$addrs] lacks r1's WAN mapping '$omap' of the overlay socket" ;;
            esac
        fi
        ovl_stop $pid
    done

    # b. Only one supernode known: no second server for test IV.
    nat cone
    log=$TMP/ovl-one.log
    ovl_start a "$log" 40 --bootstrap "$K1" --handle "nl$$-one" --nat --login-timeout 15
    pid=$OPID
    wait_for "$log" '"event":"nat"' 20 $pid
    refl=$(jget "$log" nat reflexive)
    echo "overlay peer (one supernode): $(grep -m1 '"event":"nat"' "$log")"
    [ "$(jget "$log" nat type)" = unknown ] && [ "${refl%:*}" = 203.0.113.11 ] &&
        pass "overlay, one supernode known: unknown, reflexive $refl" ||
        { fail "overlay, one supernode known: want unknown on 203.0.113.11"; cat "$log"; }
    ovl_stop $pid

    # c. UDP blocked: login over TCP, then test I times out (39.5 s with
    #    the default RTO). Meanwhile, a peer without NAT on 203.0.113.3.
    nat udp-block
    local ub ublog=$TMP/ovl-udp-block.log tub=$SECONDS
    ovl_start a "$ublog" 70 --bootstrap "$K1,$K2" --handle "nl$$-ub" --nat --login-timeout 15
    ub=$OPID
    if wait_for "$ublog" '"event":"logged_in"' 15 $ub &&
       wait_for "$ublog" '"event":"published"' 5 $ub; then
        pass "overlay udp-block: logged in over TCP after $((SECONDS - tub)) s"
        oport=$(jget "$ublog" ready port)
        res=$(ovl_lookup "nl$$-ub" "$TMP/lookup-ub.log")
        read -r state addrs <<<"$res"
        echo "overlay: lookup nl$$-ub from 203.0.113.3: $state [$addrs]"
        [ "$state" = online ] && [ "$addrs" = "10.0.1.2:$oport" ] &&
            pass "overlay udp-block: presence [$addrs] (no UDP mapping exists)" ||
            fail "overlay udp-block: lookup $state [$addrs], want online [10.0.1.2:$oport]"
    else
        fail "overlay udp-block: not logged in over TCP"; cat "$ublog"
    fi

    log=$TMP/ovl-open.log
    ovl_start inet "$log" 40 --bind 203.0.113.3 --bootstrap "$K1,$K2" --handle "nl$$-open" \
        --nat --login-timeout 15 --stay 20
    pid=$OPID
    if wait_for "$log" '"event":"nat"' 20 $pid && wait_for "$log" '"event":"published"' 5 $pid; then
        want_nat open "$log" open none
        refl=$(jget "$log" nat reflexive)
        oport=$(jget "$log" ready port)
        [ "${refl%:*}" = 203.0.113.3 ] && pass "overlay open: reflexive $refl, its own address" ||
            fail "overlay open: reflexive '$refl', want 203.0.113.3:*"
        res=$(ovl_lookup "nl$$-open" "$TMP/lookup-open.log")
        read -r state addrs <<<"$res"
        echo "overlay: lookup nl$$-open from 203.0.113.3: $state [$addrs]"
        [ "$state" = online ] && [ "$addrs" = "203.0.113.3:$oport" ] &&
            pass "overlay open: presence [$addrs]" ||
            fail "overlay open: lookup $state [$addrs], want online [203.0.113.3:$oport]"
    else
        fail "overlay open: no NAT result"; cat "$log"
    fi
    ovl_stop $pid

    if wait_for "$ublog" '"event":"nat"' $((tub + 55 - SECONDS)) $ub; then
        echo "overlay peer (udp-block): $(grep -m1 '"event":"nat"' "$ublog") after $((SECONDS - tub)) s"
        [ "$(jget "$ublog" nat type)" = udp-blocked ] && [ "$(jget "$ublog" nat reflexive)" = null ] &&
            pass "overlay udp-block: udp-blocked, no reflexive address" ||
            fail "overlay udp-block: want udp-blocked"
    else
        fail "overlay udp-block: no NAT result within 55 s"; cat "$ublog"
    fi
    ovl_stop $ub
    ovl_stop $p2; ovl_stop $p1
    echo "overlay checks: $((SECONDS - t0)) s"
}

case $MODE in
loopback) loopback ;;
natlab) natlab ;;
*) echo "usage: $0 loopback|natlab BRIDGE STUN_LAB SHIM [CLIENT]" >&2; exit 2 ;;
esac
echo "$FAILS failure(s)"
[ $FAILS -eq 0 ]
