#!/usr/bin/env python3
"""Figures of a cluster (docs/cluster.md, "Figures"): workloads b and c of
the shared harness (500 and 100 clients flooding #lobby, 4 lines in flight
each, 64-byte lines), spread by the load generator over 1, 2 and 3 servers
sharing one Redis, and one server alone without --cluster, in one run.

    cargo build --release --bin loopchat --bin loadgen
    scripts/cluster-bench.py [--seconds 8] [--rounds 1] [--rate N] [--workloads b,c]
                             [--servers 0,1,2,3] [--appendonly yes|no] [--spin-us N]
                             [--pin] [--server BIN]

`--rate N` runs an open loop instead of the flood: N lines per second per
sender (for the latency Redis adds at part load: half of the flood's
lines/s is `--rate` = lines/s / 2 / clients).

`--spin-us` is passed to the load generator (0: it sleeps until each
scheduled send rather than spinning the last 250 µs, which at 100 senders
keeps it on a whole core the servers and Redis then lack).
`--server BIN` runs another build (for two builds side by side).
`--servers` picks the runs (0: one server alone, without --cluster).
`--pin` puts Redis and the servers on CPU 0 and the load generator on
the others (Linux's affinity): on a 2-core machine the load generator's
receiving then cannot take the core a Redis reply waits for, and a line's
hops to Redis and back hand the core over directly (docs/cluster.md).
Starts its own redis-server (a free loopback port, a temporary directory,
`appendonly yes` unless `--appendonly no`, stopped at the end) and its own servers (free ports,
history in memory, flood control off). Per run it prints one Markdown row:
deliveries/s, latency p50/p99, lines accepted/s, lost and reordered (the
load generator's own checks), the servers' CPU (sum, % of one core) and
Redis's CPU per accepted line (its `INFO cpu` before and after, over the
lines the load generator sent). Every process it starts is stopped, even
on failure.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "target/release/loopchat")
LOADGEN = os.path.join(ROOT, "target/release/loadgen")
WORKLOADS = {"b": 500, "c": 100}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def redis_cli(port, *args):
    out = subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True
    )
    return out.stdout


def redis_cpu(port):
    info = redis_cli(port, "INFO", "cpu")
    values = dict(
        line.split(":", 1) for line in info.splitlines() if ":" in line
    )
    return float(values["used_cpu_user"]) + float(values["used_cpu_sys"])


def wait_welcome(port, deadline=30.0):
    """Until a client of the server on `port` is welcomed (a clustered
    server turns clients away until it has reached Redis)."""
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                first = s.makefile().readline()
                if first.startswith("* welcome"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on {port} never welcomed a client")


def affinity(cpus):
    """A `preexec_fn` that pins the child to `cpus` (None: no pinning)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


# CPUs of Redis and the servers, and of the load generator (`--pin`).
PIN = {"servers": None, "loadgen": None}


def start_servers(count, redis_url, logdir):
    servers = []
    for _ in range(count):
        port = free_port()
        args = [
            SERVER, "--addr", f"127.0.0.1:{port}", "--web-addr", "off",
            "--history-file", ":memory:", "--irc-addr", "off", "--flood-lines-per-sec", "0",
            "--flood-bytes-per-sec", "0", "--max-clients", "2000",
        ]
        if redis_url:
            args += ["--cluster", redis_url]
        log = open(os.path.join(logdir, f"server-{port}.log"), "w")
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log,
                                env={**os.environ, "RUST_LOG": "info"},
                                preexec_fn=affinity(PIN["servers"]))
        servers.append((proc, port))
    for _, port in servers:
        try:
            wait_welcome(port)
        except RuntimeError:
            with open(os.path.join(logdir, f"server-{port}.log")) as f:
                sys.stderr.write(f.read()[-3000:])
            stop(servers)
            raise
    return servers


def stop(servers):
    for proc, _ in servers:
        proc.terminate()
    for proc, _ in servers:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(label, servers, clients, seconds, redis_port, rate, spin_us):
    mode = ["--rate", str(rate), "--spin-us", str(spin_us)] if rate else ["--flood", "4"]
    args = [
        LOADGEN, "--json", "--quiet", "--clients", str(clients), *mode,
        "--duration", str(seconds), "--warmup", "1", "--drain", "10",
    ]
    for _, port in servers:
        args += ["--addr", f"127.0.0.1:{port}"]
    pids = [proc.pid for proc, _ in servers]
    ticks = [cpu_ticks(pid) for pid in pids]
    redis_before = redis_cpu(redis_port) if redis_port else None
    started = time.time()
    out = subprocess.run(args, capture_output=True, text=True,
                         preexec_fn=affinity(PIN["loadgen"]))
    wall = time.time() - started
    ticks = sum(cpu_ticks(pid) for pid in pids) - sum(ticks)
    redis_after = redis_cpu(redis_port) if redis_port else None
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        print(f"| {label} | load generator failed: {out.stderr.strip()[:200]} |")
        return
    hz = os.sysconf("SC_CLK_TCK")
    server_pct = 100.0 * ticks / hz / wall
    lat = report["latency_us"]
    redis = "-"
    if redis_before is not None and report["sent_total"]:
        per_line = (redis_after - redis_before) / report["sent_total"] * 1e6
        redis = f"{per_line:.1f} µs"
    print(
        f"| {label} | {report['delivered_per_s'] / 1e6:.2f}M "
        f"| {lat['p50'] / 1000:.1f} / {lat['p99'] / 1000:.1f} ms "
        f"| {report['sent_per_s'] / 1000:.1f}k "
        f"| {report['lost']}, {report['reordered']} "
        f"| {server_pct:.0f} % | {redis} |",
        flush=True,
    )


def main():
    global SERVER
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--rate", type=int, default=0)
    parser.add_argument("--workloads", default="b,c")
    parser.add_argument("--servers", default="0,1,2,3")
    parser.add_argument("--appendonly", choices=["yes", "no"], default="yes")
    parser.add_argument("--spin-us", type=int, default=250)
    parser.add_argument("--pin", action="store_true")
    parser.add_argument("--server", default=SERVER, help="the loopchat binary to run")
    opts = parser.parse_args()
    SERVER = opts.server
    if opts.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            sys.exit("--pin needs at least two CPUs")
        PIN["servers"], PIN["loadgen"] = {cpus[0]}, set(cpus[1:])
    for binary in (SERVER, LOADGEN):
        if not os.path.exists(binary):
            sys.exit(f"{binary} missing: cargo build --release --bin loopchat --bin loadgen")
    tmp = tempfile.mkdtemp(prefix="cluster-bench-")
    redis_port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
         "--dir", tmp, "--appendonly", opts.appendonly, "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=affinity(PIN["servers"]),
    )
    try:
        for _ in range(100):
            try:
                redis_cli(redis_port, "PING")
                break
            except subprocess.CalledProcessError:
                time.sleep(0.1)
        url = f"redis://127.0.0.1:{redis_port}"
        pinned = f", pinned: {PIN}" if opts.pin else ""
        print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}{pinned}")
        print("| run | deliveries/s | p50 / p99 | lines/s | lost, reordered | servers' CPU | Redis CPU per line |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for _ in range(opts.rounds):
            for workload in opts.workloads.split(","):
                clients = WORKLOADS[workload]
                for count in [int(n) for n in opts.servers.split(",")]:
                    servers = start_servers(max(count, 1), url if count else None, tmp)
                    label = f"{workload}: " + (
                        "alone, no --cluster" if count == 0 else f"{count} server{'s' if count > 1 else ''}, --cluster"
                    )
                    try:
                        run(label, servers, clients, opts.seconds, redis_port if count else None, opts.rate,
                            opts.spin_us)
                    finally:
                        stop(servers)
        print(f"load average after: {os.getloadavg()}")
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
