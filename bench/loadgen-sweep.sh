#!/usr/bin/env bash
# loadgen-sweep.sh: starts a fresh chorus-bridge on loopback (temporary state
# directory, its own ports, no overlay: only media is measured), runs
# chorus-loadgen for a sweep of leg counts (secure legs with 3 talkers,
# then plain RTP legs), and prints one table.
# The figures go in docs/performance.md; see there for what they mean.
#
# Usage: bench/loadgen-sweep.sh            (from the source tree, after a build)
# Environment:
#   BUILD_DIR        where bin/chorus-bridge and bin/chorus-loadgen are (build)
#   SECURE_LEGS      secure sweep (default "10 100 500 1000 2000")
#   RTP_LEGS         plain RTP sweep (default "10 100 1000")
#   TALKERS          talking legs per run (default 3)
#   SECONDS_PER_RUN  measured window of each run (default 10)
#   MEDIA_PORT API_PORT RTP_PORT_MIN RTP_PORT_MAX   the bridge's ports
#                    (default 34533 18533 45000 47999)
#   OUT              also keep the JSON lines here (default: the temp dir)
# Every run is bounded (timeout); the default sweep takes about 3 minutes.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$here/build}
SECURE_LEGS=${SECURE_LEGS:-"10 100 500 1000 2000"}
RTP_LEGS=${RTP_LEGS:-"10 100 1000"}
TALKERS=${TALKERS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
MEDIA_PORT=${MEDIA_PORT:-34533}
API_PORT=${API_PORT:-18533}
RTP_PORT_MIN=${RTP_PORT_MIN:-45000}
RTP_PORT_MAX=${RTP_PORT_MAX:-47999}

bridge_bin=$BUILD_DIR/bin/chorus-bridge
loadgen_bin=$BUILD_DIR/bin/chorus-loadgen
for b in "$bridge_bin" "$loadgen_bin"; do
  [[ -x $b ]] || { echo "loadgen-sweep: $b is missing: build first (BUILD_DIR=$BUILD_DIR)" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/chorus-sweep.XXXXXX)
OUT=${OUT:-$tmp/results.jsonl}
: > "$OUT"
bridge_pid=
cleanup() {
  if [[ -n $bridge_pid ]] && kill -0 "$bridge_pid" 2>/dev/null; then
    kill -TERM "$bridge_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$bridge_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$bridge_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp/state"
}
trap cleanup EXIT

# One socket per leg on our side; the bridge needs one per plain leg.
ulimit -n "$(ulimit -Hn)"

echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')," \
     "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg); net.core.rmem_default=$(cat /proc/sys/net/core/rmem_default)"
echo "# fd limit: $(ulimit -n); bridge: $bridge_bin"

max_legs=0
for n in $SECURE_LEGS $RTP_LEGS; do (( n > max_legs )) && max_legs=$n; done
"$bridge_bin" --state-dir "$tmp/state" --media-addr 127.0.0.1 --media-port "$MEDIA_PORT" \
  --api-port "$API_PORT" --rtp-port-min "$RTP_PORT_MIN" --rtp-port-max "$RTP_PORT_MAX" \
  --max-legs $(( max_legs + 100 )) --demo-room '' --no-overlay --log-level warn > "$tmp/bridge.log" 2>&1 &
bridge_pid=$!
for _ in $(seq 100); do
  [[ -s $tmp/state/api-token ]] && curl -fsS "http://127.0.0.1:$API_PORT/v1/health" >/dev/null 2>&1 && break
  kill -0 "$bridge_pid" 2>/dev/null || { echo "loadgen-sweep: the bridge did not start:" >&2; cat "$tmp/bridge.log" >&2; exit 3; }
  sleep 0.1
done

run() { # kind legs
  local kind=$1 n=$2 budget
  budget=$(( 60 + n / 50 + SECONDS_PER_RUN ))
  timeout --signal=INT --kill-after=10 "$budget" "$loadgen_bin" --json --kind "$kind" --legs "$n" \
    --talkers "$TALKERS" --room "sweep-$kind-$n" --seconds "$SECONDS_PER_RUN" \
    --bridge "127.0.0.1:$MEDIA_PORT" --api "http://127.0.0.1:$API_PORT" --state-dir "$tmp/state" \
    --bridge-pid "$bridge_pid" >> "$OUT" || echo "loadgen-sweep: $kind $n legs: exit $?" >&2
  sleep 1 # let the bridge drop the run's legs before the next one
}

for n in $SECURE_LEGS; do run secure "$n"; done
for n in $RTP_LEGS; do run rtp "$n"; done

echo "# results: $OUT"
if command -v python3 >/dev/null; then
  python3 - "$OUT" <<'EOF'
import json, sys
cols = [("kind", "kind", "{}"), ("legs", "legs", "{}"), ("joined", "joined", "{}"),
        ("bridge_cpu_pct", "bridge CPU %", "{:.1f}"),
        ("bridge_cpu_us_per_leg_s", "us/s per leg", "{:.0f}"),
        ("bridge_loop_pct", "loop %", "{:.1f}"), ("bridge_mix_pct", "mix %", "{:.1f}"),
        ("bridge_missed_deadlines", "missed", "{:.0f}"),
        ("bridge_socket_drop_pct", "in drop %", "{:.2f}"), ("loss_pct", "out loss %", "{:.3f}"),
        ("jitter_ms_mean", "jitter ms", "{:.2f}"), ("jitter_ms_max", "jitter max", "{:.2f}"),
        ("latency_ms_p50", "lat p50", "{:.1f}"), ("latency_ms_p99", "lat p99", "{:.1f}"),
        ("handshake_ms_p99", "hs p99 ms", "{:.0f}"), ("loadgen_cpu_pct", "loadgen %", "{:.0f}"),
        ("send_late_ms_p99", "late p99", "{:.1f}"), ("tx_skipped_window", "skipped", "{}"),
        ("host_other_cpu_pct", "other %", "{:.0f}")]
print("| " + " | ".join(c[1] for c in cols) + " |")
print("|" + "---|" * len(cols))
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    cells = []
    for key, _, f in cols:
        v = r.get(key)
        cells.append("-" if v is None else f.format(v))
    print("| " + " | ".join(cells) + " |")
EOF
else
  cat "$OUT"
fi
echo "# bridge log: $(grep -ciE 'error|warn' "$tmp/bridge.log" || true) warning or error lines"
grep -iE 'error|warn' "$tmp/bridge.log" | head -3 | sed 's/^/#   /' || true
