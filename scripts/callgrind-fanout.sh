#!/usr/bin/env bash
# Instructions per delivery of the fan-out path, by callgrind: repeatable on a
# noisy shared machine, where deliveries/s are not.
#
#   cargo build --release --bin loopchat --bin loadgen
#   scripts/callgrind-fanout.sh [-c CLIENTS] [-s SECONDS] [-o OUTDIR] NAME=BINARY...
#
#   e.g. scripts/callgrind-fanout.sh base=target/bench-vs/bin/<7d63bda's hash> \
#          new=target/release/loopchat        (scripts/bench-vs.sh caches old builds there)
#
# For each server binary, in turn: starts it under `valgrind --tool=callgrind`
# with instrumentation off, loads it with the project's load generator
# (`loadgen --clients CLIENTS --flood 4`, every client sending in #lobby,
# default 500 clients: workload b's shape), switches instrumentation on
# (callgrind_control) once the load generator says its run has begun, off
# again SECONDS progress lines later (default 8), then stops the server with
# SIGTERM. Setup (500 joins) and the drain are not counted.
#
# Deliveries in the window are counted exactly, from callgrind's call counts
# (scripts/callgrind-summary.py): every chat line the server runs goes to the
# CLIENTS-1 other members. Prints, per binary: chat lines and deliveries in
# the window, instructions (Ir) per delivery on the event loop's thread and
# on all threads (the rest is the history writer's SQLite work), send, recv
# and epoll_wait calls per 1000 deliveries; the event loop's top functions by
# inclusive cost (callgrind_annotate) go to OUTDIR/NAME.txt. CACHE_SIM=yes
# adds callgrind's cache simulation (slower): data cache misses per delivery,
# first and last level, where the Ir count misses what memory costs.
# LOADGEN_FLAGS adds flags to the load generator (LOADGEN_FLAGS=--tags: every
# client with tags on, each sender then also gets its own lines, which the
# delivery count leaves out: 1 in CLIENTS). HISTORY_FILE=:memory: runs the
# servers without a history file (no writer, no replies held for commits). Every
# loop is bounded; loopback only; servers are stopped at the end (SIGKILL
# after 30 s if SIGTERM did not end them).
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"
CLIENTS=500
SECS=8
OUT=""
while getopts "c:s:o:" opt; do
  case $opt in
    c) CLIENTS=$OPTARG ;;
    s) SECS=$OPTARG ;;
    o) OUT=$OPTARG ;;
    *) sed -n 2,30p "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
(($# > 0)) || { sed -n 2,30p "$0"; exit 2; }
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
LOADGEN=${LOADGEN:-target/release/loadgen}
[[ -x $LOADGEN ]] || { echo "build first: cargo build --release --bin loadgen" >&2; exit 1; }
PORT=${PORT:-17978}
OUT=${OUT:-target/callgrind/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
ulimit -n "$(ulimit -H -n)" 2>/dev/null || true

# shellcheck source=scripts/server-lib.sh
source "$root/scripts/server-lib.sh"
trap 'stop_server 300' EXIT

echo "# callgrind-fanout $(date -u +%FT%TZ) clients=$CLIENTS window=${SECS} progress lines, loadgen --flood 4 ${LOADGEN_FLAGS:-}, $(valgrind --version)" | tee "$OUT/summary.txt"
for spec in "$@"; do
  name=${spec%%=*}
  bin=${spec#*=}
  mapfile -t flags < <(server_flags "$bin" "$PORT" "${HISTORY_FILE:-$OUT/$name-history.db}" off)
  rm -f "$OUT/$name-history.db"
  rm -f "$OUT/$name".cg*
  RUST_LOG=warn valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes \
    --cache-sim="${CACHE_SIM:-no}" \
    --callgrind-out-file="$OUT/$name.cg" "$bin" "${flags[@]}" 2>"$OUT/$name-server.log" &
  pid=$!
  wait_for_port "$PORT" 300 || { echo "$name: server did not start, see $OUT/$name-server.log" >&2; exit 1; }
  # The load: bounded by its own duration; timeout backs it up.
  window=0
  on=false
  exec 4< <(timeout -k 5 300 "$LOADGEN" --addr "127.0.0.1:$PORT" --clients "$CLIENTS" \
    --flood 4 --warmup 2 --duration $((SECS + 4)) --drain 2 --setup-timeout 120 \
    --connect-concurrency 16 ${LOADGEN_FLAGS:-} 2>&1)
  while IFS= read -r line <&4; do
    echo "$line" >>"$OUT/$name-loadgen.log"
    case $line in
      *"] run: "*)
        if ! $on && ((window == 0)); then
          callgrind_control -i on "$pid" >/dev/null
          on=true
        elif $on; then
          window=$((window + 1))
          if ((window >= SECS)); then
            callgrind_control -i off "$pid" >/dev/null
            on=false
          fi
        fi
        ;;
    esac
  done
  exec 4<&-
  if $on; then
    callgrind_control -i off "$pid" >/dev/null || true
  fi
  stop_server 300
  python3 scripts/callgrind-summary.py "$CLIENTS" "$name" "$OUT/$name".cg-* | tee -a "$OUT/summary.txt"
  loop_file=$(grep -l "protocol::sanitize" "$OUT/$name".cg-* | head -1)
  callgrind_annotate --inclusive=yes "$loop_file" 2>/dev/null | head -60 >"$OUT/$name.txt" || true
done
echo "callgrind files and loadgen logs: $OUT" >&2
