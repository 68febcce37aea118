#!/usr/bin/env bash
# Measures the attacks in docs/benchmarks.md's "Connections and credentials" table
# against one server binary, on loopback, each bounded in time:
#
#   cargo build --release --bin loopchat --example attack
#   scripts/attacks.sh target/release/loopchat target/release/examples/attack [PORT]
#
# Works against older builds too (flags they lack are skipped). Prints one
# block per attack; the log file of each run is left in $OUT (default a
# temporary directory). ONLY="guess churn" runs only those.
set -euo pipefail
server=$1
attack=$2
port=${3:-12100}
addr=127.0.0.1:$port
out=${OUT:-$(mktemp -d)}
ulimit -n "$(ulimit -H -n)" 2>/dev/null || true
new_flags=false
if "$server" --help 2>&1 | grep -q -- --limit-loopback; then new_flags=true; fi
# No history file in the working directory (issue 13's --history-file).
history=()
if "$server" --help 2>&1 | grep -q -- --history-file; then history=(--history-file :memory:); fi

pid=
start() { # start NAME FLAGS...
  local name=$1
  shift
  log=$out/$name.log
  "$server" --addr "$addr" "${history[@]}" "$@" 2>"$log" &
  pid=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$log" && return 0
    sleep 0.1
  done
  echo "server did not start" >&2
  exit 1
}
stop() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
now() { date +%s.%N; }

run() { [[ " ${ONLY:-slowloris guess churn shutdown} " == *" $1 "* ]]; }

if run slowloris; then
echo "== slowloris: 2000 connections, one byte every 3 s, --max-clients 2000 --idle-timeout 10"
start slowloris --max-clients 2000 --idle-timeout 10
"$attack" slowloris "$addr" 2000 40 | awk 'NR % 5 == 1 || /slowloris:/'
stop
if $new_flags; then
  echo "== slowloris from one address with --limit-loopback (default --max-per-address 16)"
  start slowloris-per-address --max-clients 2000 --idle-timeout 10 --limit-loopback
  "$attack" slowloris "$addr" 2000 6 127.0.0.5 | tail -n 2
  stop
fi
fi

if run guess; then
echo "== password guessing: 64 parallel connections for 20 s"
start guess --password right-one
"$attack" guess "$addr" 64 20 right-one
stop
grep -c "wrong passwords" "$log" | sed 's/^/lockout warnings logged: /' || true
fi

if run churn; then
echo "== churn: 4 threads connecting and closing for 10 s; log growth"
start churn
before=$(stat -c %s "$log")
t0=$(now)
"$attack" churn "$addr" 4 10
t1=$(now)
after=$(stat -c %s "$log")
awk -v b="$before" -v a="$after" -v t0="$t0" -v t1="$t1" \
  'BEGIN { printf "log: %d bytes in %.1f s = %.0f bytes/s\n", a - b, t1 - t0, (a - b) / (t1 - t0) }'
stop
fi

if run shutdown; then
echo "== shutdown: SIGTERM with 500 clients that read and never close"
start shutdown
"$attack" readers "$addr" 500 30 >"$out/readers.out" &
readers=$!
for _ in $(seq 300); do
  grep -q "connected; waiting" "$out/readers.out" && break
  sleep 0.1
done
t0=$(now)
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
t1=$(now)
wait "$readers" || true
tail -n 1 "$out/readers.out"
fi
awk -v t0="$t0" -v t1="$t1" -v s="$status" \
  'BEGIN { printf "shutdown: exit status %d after %.2f s\n", s, t1 - t0 }'
echo "logs in $out"
