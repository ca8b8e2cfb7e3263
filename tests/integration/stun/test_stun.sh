#!/bin/bash
# test_stun.sh: STUN and NAT discovery against real tools and real NATs.
#
#   test_stun.sh loopback BRIDGE STUN_LAB SHIM
#       coturn's turnutils_stunclient asks a running chorus-bridge (media
#       port, 127.0.0.1) for its reflexive address; it must be the client's
#       own 127.0.0.1:port. Malformed STUN must count as rx_invalid and get
#       no answer.
#
#   test_stun.sh natlab BRIDGE STUN_LAB SHIM
#       A network-namespace NAT lab (after /work/shared/LAB.md's natlab.sh):
#         [a 10.0.1.2]--lan--[r1 10.0.1.1 | wan 203.0.113.11]--br0--[inet 203.0.113.1/.2/.3]
#       1. turnutils_stunclient in a gets r1's WAN address from the bridge.
#       2. The ovl_nat classifier (stun_lab probe) in a, against an RFC 5780
#          server (stun_lab server on .1/.2 x 3478/3479), names r1's type in
#          each mode: cone, symmetric, fullcone, restricted, udp-block; and
#          "open"/"firewalled" for a host without NAT.
#       3. coturn's turnutils_natdiscovery agrees with that server.
#       Needs root and `ip netns`; skips (exit 77) with a reason otherwise.
#
# Every wait is bounded; everything started is killed by PID and every
# namespace deleted on exit, whatever happened.
set -uo pipefail

MODE=${1:-}
BRIDGE=${2:-}
LAB=${3:-}
SHIM=${4:-}
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
    echo "usage: $0 loopback|natlab BRIDGE STUN_LAB SHIM" >&2; exit 2; }
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
            --rtp-port-max $((base + 9)) --demo-room= --no-realtime --no-overlay >"$log" 2>&1 &
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
}

case $MODE in
loopback) loopback ;;
natlab) natlab ;;
*) echo "usage: $0 loopback|natlab BRIDGE STUN_LAB SHIM" >&2; exit 2 ;;
esac
echo "$FAILS failure(s)"
[ $FAILS -eq 0 ]
