#!/usr/bin/env bash
# Fan-out throughput of this tree against an older commit (default 7d63bda,
# round 1's main), on the shared harness (shared/bench, `fanout --proto line`),
# run alternately A B A B so both see the same machine:
#
#   scripts/bench-vs.sh [-b BASE_REV] [-n "REV ..."] [-w "b c"] [-r 3] [-d 10] [-o OUTDIR]
#
#   -b  the commit to compare against (default 7d63bda)
#   -n  what to measure against it: commits, and `.` for the working tree
#       (default `.`); `-n "main ."` runs base, main, working tree in turn
#   -w  workloads, as in shared/bench/bench.sh: b = 500 clients flooding,
#       c = 100 clients flooding (a = 500 clients at 2 msg/s also works)
#   -r  runs of each side per workload (default 3)
#   -d  measured seconds per run (default 10)
#   -o  where the log, each server's stderr and results.jsonl go
#       (default target/bench-vs/results/UTCTIME)
#
# Each commit is built once with `cargo build --release` in a git worktree
# under a temporary directory, its binary cached in target/bench-vs/bin/REV
# (a rev is resolved to its full hash, so a moved branch is rebuilt); the
# working tree is built in place. A commit's first build is a whole release
# build of its dependencies (target/bench-vs/build-old): 3-15 minutes here. The harness is built from $HARNESS_DIR
# (default ../shared/bench beside the repository) into target/bench-vs/harness.
#
# Both servers run with their defaults except: flood control off (the
# --flood-* flags, where the binary has them), the history file in the run
# directory (where it has --history-file), and the addresses below. Every
# server is started fresh for its run and stopped after it (SIGTERM, then
# SIGKILL after 5 s); everything runs on loopback, inside a private network
# namespace when `unshare -n` works (root), so nothing else can reach the
# servers. Each fanout run stops by itself (setup <= 60 s, then 1 s warmup,
# the window, 3 s drain) and `timeout` backs that up.
#
# Prints one line per run (deliveries/s, server CPU, CPU-seconds per million
# deliveries, load average before it) and, per workload, the mean of each side
# and its ratio to the base. Compare only figures from the same invocation:
# on a shared 2-core machine, runs move by 10-25 % with other developers' load.
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"

BASE=7d63bda
NEW="."
WORKLOADS="b c"
REPS=3
DUR=10
OUT=""
while getopts "b:n:w:r:d:o:" opt; do
  case $opt in
    b) BASE=$OPTARG ;;
    n) NEW=$OPTARG ;;
    w) WORKLOADS=$OPTARG ;;
    r) REPS=$OPTARG ;;
    d) DUR=$OPTARG ;;
    o) OUT=$OPTARG ;;
    *) sed -n 2,34p "$0"; exit 2 ;;
  esac
done
PORT=${PORT:-17878}
HARNESS_DIR=${HARNESS_DIR:-$root/../shared/bench}
cache=$root/target/bench-vs

if [[ -z ${BENCH_VS_IN_NETNS:-} ]]; then
  # Build outside the namespace (cargo may need the registry).
  build_rev() { # build_rev REV -> prints the binary's path
    local rev hash dir bin
    rev=$1
    hash=$(git rev-parse --verify "$rev^{commit}")
    bin=$cache/bin/$hash
    if [[ ! -x $bin ]]; then
      dir=$(mktemp -d /tmp/bench-vs-src.XXXXXX)
      git worktree add --detach "$dir/src" "$hash" >&2
      (cd "$dir/src" && CARGO_TARGET_DIR=$cache/build-old cargo build --release --bin loopchat >&2)
      mkdir -p "$cache/bin"
      cp "$cache/build-old/release/loopchat" "$bin"
      git worktree remove --force "$dir/src" >&2
      rmdir "$dir"
    fi
    echo "$bin"
  }
  # SIDES: "name=binary=description" per side, base first, tab-separated.
  SIDES="base=$(build_rev "$BASE")=$BASE ($(git rev-parse --short "$BASE^{commit}"))"
  for rev in $NEW; do
    if [[ $rev == . ]]; then
      cargo build --release --bin loopchat >&2
      dirty=$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' + uncommitted changes')
      SIDES+=$'\t'"tree=$root/target/release/loopchat=working tree at $(git rev-parse --short HEAD)$dirty"
    else
      SIDES+=$'\t'"$rev=$(build_rev "$rev")=$rev ($(git rev-parse --short "$rev^{commit}"))"
    fi
  done
  [[ -d $HARNESS_DIR ]] || { echo "no harness at $HARNESS_DIR: set HARNESS_DIR" >&2; exit 1; }
  (cd "$HARNESS_DIR" && CARGO_TARGET_DIR=$cache/harness cargo build --release --bin fanout >&2)
  export SIDES
  export FANOUT=$cache/harness/release/fanout
  args=(-w "$WORKLOADS" -r "$REPS" -d "$DUR")
  [[ -n $OUT ]] && args+=(-o "$OUT")
  if [[ -z ${NO_NETNS:-} ]] && unshare -n true 2>/dev/null; then
    exec unshare -n env BENCH_VS_IN_NETNS=1 "$0" "${args[@]}"
  fi
  export BENCH_VS_IN_NETNS=none
fi
if [[ $BENCH_VS_IN_NETNS == 1 ]]; then
  ip link set lo up
fi

OUT=${OUT:-$cache/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
log=$OUT/log.txt
ulimit -n "$(ulimit -H -n)" 2>/dev/null || true

workload_args() {
  case $1 in
    a) echo "--clients 500 --rate 2" ;;
    b) echo "--clients 500 --flood" ;;
    c) echo "--clients 100 --flood" ;;
    *) echo "unknown workload $1" >&2; exit 2 ;;
  esac
}

# shellcheck source=scripts/server-lib.sh
source "$root/scripts/server-lib.sh"
trap stop_server EXIT

start_server() { # start_server BIN RUNDIR
  local flags
  mapfile -t flags < <(server_flags "$1" "$PORT" "$2/history.db" "127.0.0.1:$((PORT + 1))")
  RUST_LOG=warn "$1" "${flags[@]}" 2>"$2/server.log" &
  pid=$!
  wait_for_port "$PORT" 100 && return 0
  echo "server $1 did not start; its log:" >&2
  cat "$2/server.log" >&2
  exit 1
}

{
  echo "# bench-vs $(date -u +%FT%TZ) cpus=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\" kernel=$(uname -r) netns=$BENCH_VS_IN_NETNS"
  IFS=$'\t' read -r -a sides <<<"$SIDES"
  for side in "${sides[@]}"; do
    name=${side%%=*}
    rest=${side#*=}
    echo "# $name: ${rest#*=}"
  done
  echo "# workloads: $WORKLOADS; runs each: $REPS; window: ${DUR}s; harness: $FANOUT"
} | tee "$log"

results=$OUT/results.jsonl
: >"$results"
for w in $WORKLOADS; do
  for rep in $(seq 1 "$REPS"); do
    IFS=$'\t' read -r -a sides <<<"$SIDES"
    for spec in "${sides[@]}"; do
      side=${spec%%=*}
      bin=${spec#*=}
      bin=${bin%%=*}
      run=$OUT/$w-$rep-$side
      mkdir -p "$run"
      start_server "$bin" "$run"
      load=$(cut -d' ' -f1 /proc/loadavg)
      set +e
      # shellcheck disable=SC2046
      out=$(timeout -k 5 $((DUR + 90)) "$FANOUT" --addr "127.0.0.1:$PORT" --proto line \
        $(workload_args "$w") --duration "$DUR" --warmup 1 --server-pid "$pid" \
        --label "$side/$w/$rep" --json 2>&1)
      rc=$?
      set -e
      stop_server
      printf '%s\n' "$out" | grep -v '^{' >>"$log"
      json=$(printf '%s\n' "$out" | grep '^{' | tail -1)
      if [[ -z $json ]]; then
        echo "$w run $rep $side: no result (rc=$rc), see $log" | tee -a "$log"
        continue
      fi
      printf '%s\n' "$json" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
side, w, rep = r["label"].split("/")
load, out = sys.argv[1], sys.argv[2]
cpu = r["cpu"]["server_pct"] or 0.0
d = r["delivered_per_s"]
per_m = cpu / 100.0 / (d / 1e6) if d else float("nan")
r["side"], r["workload"], r["rep"], r["load1"] = side, w, int(rep), float(load)
r["server_cpu_s_per_m"] = per_m
with open(out, "a") as f:
    f.write(json.dumps(r) + "\n")
harness, other, lost = r["cpu"]["harness_pct"], r["cpu"]["other_pct"], r["lost"]
print(f"{w} run {rep} {side:6}: {d/1e6:6.2f}M deliveries/s  server {cpu:5.1f}%  "
      f"{per_m:.3f} CPU-s/M  harness {harness:.0f}%  other {other}%  lost {lost}  load1 {load}")
' "$load" "$results" | tee -a "$log"
    done
  done
done

python3 - "$results" <<'EOF' | tee -a "$log"
import json, sys
from statistics import mean
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sides = list(dict.fromkeys(r["side"] for r in runs))
for w in sorted({r["workload"] for r in runs}):
    by = {s: [r for r in runs if r["workload"] == w and r["side"] == s] for s in sides}
    if not by.get("base"):
        print(f"{w}: no base run")
        continue
    base = mean(r["delivered_per_s"] for r in by["base"]) / 1e6
    for s, rs in by.items():
        if not rs:
            print(f"{w} {s}: no run")
            continue
        d = [r["delivered_per_s"] / 1e6 for r in rs]
        c = mean(r["server_cpu_s_per_m"] for r in rs)
        print(f"{w} {s:6}: {mean(d):.2f}M deliveries/s ({', '.join(f'{x:.2f}' for x in d)}), "
              f"{mean(d) / base:.3f}x base, server {c:.3f} CPU-s per M deliveries")
EOF
echo "results: $OUT" >&2
