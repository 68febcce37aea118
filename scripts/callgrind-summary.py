#!/usr/bin/env python3
"""Instructions per delivery from callgrind's per-thread files of one server
run (scripts/callgrind-fanout.sh calls this).

    callgrind-summary.py CLIENTS NAME FILE.cg-01 FILE.cg-02 ...

Deliveries are counted exactly from call counts: protocol::sanitize runs once
for every chat line, and every chat line goes to the CLIENTS-1 other members
of the one room. The event loop is the thread that runs those lines; the
other threads' instructions are the history writer's (SQLite)."""
import re
import sys


def parse(path):
    """Totals of one callgrind file ({event: count}) and the calls made to
    each function."""
    names, calls, total, cfn, events = {}, {}, {}, None, ["Ir"]
    for line in open(path, errors="replace"):
        if line.startswith("events:"):
            events = line.split()[1:]
            continue
        m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3).strip()
            if m.group(1) == "cfn":
                cfn = names.get(m.group(2), m.group(2))
            continue
        if line.startswith("calls=") and cfn:
            calls[cfn] = calls.get(cfn, 0) + int(line.split("=")[1].split()[0])
        elif line.startswith("summary:") or line.startswith("totals:"):
            total = dict(zip(events, map(int, line.split()[1:])))
    return total, calls


def count(calls, pattern):
    return sum(n for f, n in calls.items() if re.search(pattern, f))


def main():
    clients, name, paths = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    threads = [parse(p) for p in paths]
    total = sum(t.get("Ir", 0) for t, _ in threads)
    chat = r"protocol::sanitize$"
    loop, loop_calls = max(threads, key=lambda t: count(t[1], chat))
    loop_ir = loop.get("Ir", 0)
    lines = count(loop_calls, chat)
    deliveries = lines * (clients - 1)
    if not deliveries:
        print(f"{name}: {total:,} Ir, no chat line counted (is protocol::sanitize inlined?)")
        return
    writes = count(loop_calls, r"^(__)?(libc_)?(write|send|writev|sendto|sendmsg)$")
    reads = count(loop_calls, r"^(__)?(libc_)?(read|recv|recvfrom|recvmsg)$")
    polls = count(loop_calls, r"^(__)?epoll_wait$")
    print(
        f"{name}: {lines:,} chat lines, {deliveries:,} deliveries; Ir per delivery "
        f"{loop_ir / deliveries:.1f} event loop, {total / deliveries:.1f} all threads "
        f"(history writer {(total - loop_ir) / lines:,.0f} Ir per chat line); per 1000 "
        f"deliveries {writes / deliveries * 1000:.2f} sends, {reads / deliveries * 1000:.2f} "
        f"recvs, {polls / deliveries * 1000:.3f} epoll_waits"
    )
    if "D1mr" in loop:
        d1 = loop["D1mr"] + loop.get("D1mw", 0)
        ll = loop.get("DLmr", 0) + loop.get("DLmw", 0)
        print(
            f"{name}: event loop data cache misses per delivery (simulated): "
            f"{d1 / deliveries:.2f} first level, {ll / deliveries:.3f} last level"
        )


main()
