# Shell functions shared by scripts/bench-vs.sh and scripts/callgrind-fanout.sh
# (sourced, not run): flags for any build of loopchat, start-up and stop of
# one server in $pid, each bounded in time.

# server_flags BIN PORT HISTORY_FILE WEB_ADDR: one flag a line, for BIN's
# build: flood control off and the history file where the build has them,
# the web address (`off`, or HOST:PORT) where it has one, the IRC
# listeners off where it has them.
server_flags() {
  local help
  help=$("$1" --help 2>&1)
  printf '%s\n' --addr "127.0.0.1:$2"
  if grep -q -- --flood-lines-per-sec <<<"$help"; then
    printf '%s\n' --flood-lines-per-sec 0 --flood-bytes-per-sec 0
  fi
  if grep -q -- --history-file <<<"$help"; then printf '%s\n' --history-file "$3"; fi
  if grep -q -- --web-addr <<<"$help"; then printf '%s\n' --web-addr "$4"; fi
  # The IRC listeners' default ports may be another run's (or a test's):
  # a server that cannot listen there exits.
  if grep -q -- --irc-addr <<<"$help"; then printf '%s\n' --irc-addr off; fi
  if grep -q -- --irc-tls-addr <<<"$help"; then printf '%s\n' --irc-tls-addr off; fi
}

# wait_for_port PORT TENTHS: whether the server $pid accepts a connection on
# 127.0.0.1:PORT within TENTHS tenths of a second (the probe leaves at once).
wait_for_port() {
  local _
  for _ in $(seq "$2"); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# stop_server [TENTHS]: SIGTERM to $pid, SIGKILL if it is still there after
# TENTHS tenths of a second (default 50).
pid=""
stop_server() {
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local _
  for _ in $(seq "${1:-50}"); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
}
