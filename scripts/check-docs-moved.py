#!/usr/bin/env python3
"""Checks that moving text out of README.md into docs/ dropped no fact.

    scripts/check-docs-moved.py [OLD_REV]   (default: b4b82d4, the last
                                             commit with the 1,600-line README)

Takes README.md as it was at OLD_REV and looks for each of its facts in
today's README.md and docs/*.md together, after collapsing whitespace and
reducing every markdown link to its text:

- every number (with its unit or suffix: 499k, 1.2×, 256 MiB, p99),
- every `--flag`,
- every `code span`,
- every cell of every table row.

Prints what it cannot find and exits 1 if anything is missing. With
--sentences it also lists the old sentences that no longer appear word for
word, for a reader to check that each was moved in other words rather than
dropped.
"""

import glob
import re
import subprocess
import sys

# Old text deliberately not kept word for word, with where its fact went.
REWORDED = {
    # The CI commands, now quoted exactly as .ci/run runs them.
    "cargo fmt --check",
    "cargo clippy --all-targets -- -D warnings",
    # One flags-table row that listed eight flags: each has its own row now.
    "`--max-per-address`, `--limit-loopback`, `--auth-timeout`, `--auth-max-failures`, "
    "`--auth-lockout`, `--keepalive-idle`, `--keepalive-interval`, `--keepalive-count`",
    # The --attack row now links to the attack measurements.
    "an attack instead of a load test (`flood`, `rooms`, `pm`), see One hostile client hurts no one",
    # The old quick start, now the README's "Run it" and "Tests" sections.
    "cargo run --release # chat on 127.0.0.1:7878, the chat page on http://127.0.0.1:7879/",
}

# Paths and names the workspace commit (6af5ec6) moved: an old fact naming
# the left one counts as kept when the new docs name the right one.
MOVED = {
    "chat.rs": "src/chat/state.rs",
    "loopchat::tls::client_config": "loopchat_client::tls::client_config",
    "loopchat::tls::connect_client": "loopchat_client::tls::connect_client",
    "src/bin/loadgen.rs": "crates/loadgen/src/main.rs",
    "src/loadgen/": "crates/loadgen/",
    "src/history.rs": "src/chat/history/mod.rs",
    "src/history/store.rs": "src/chat/history/store.rs",
    "src/history/tails.rs": "src/chat/history/tails.rs",
    "src/history/writer.rs": "src/chat/history/writer.rs",
    "src/http.rs": "src/net/http.rs",
    "src/limits.rs": "src/policy/limits.rs",
    "src/metrics_http.rs": "src/net/metrics_http.rs",
    "src/tls.rs": "src/net/tls.rs",
    "src/transport.rs": "src/net/transport.rs",
    "src/ws.rs": "src/net/ws.rs",
}

LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def normalise(text):
    text = LINK.sub(r"\1", text)
    return re.sub(r"\s+", " ", text)


def facts(old):
    found = {"number": set(), "flag": set(), "code": set(), "cell": set(), "code line": set()}
    prose = []
    fenced = False
    for line in old.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("    ") and not line.strip().startswith(("-", "`")):
            if line.strip():
                found["code line"].add(normalise(line).strip())
            if fenced:
                continue
        prose.append(line)
        if line.startswith("|") and not re.match(r"^\|[\s|:-]+\|$", line):
            for cell in line.strip().strip("|").split("|"):
                cell = normalise(cell).strip()
                if cell and cell != "-":
                    found["cell"].add(cell)
    flat = normalise("\n".join(prose))
    for span in re.findall(r"`([^`]+)`", flat):
        found["code"].add(span.strip())
    found["flag"].update(re.findall(r"--[a-z][a-z0-9-]+", flat))
    for token in re.findall(r"[\w.,×%µ/+–-]*\d[\w.,×%µ/+–-]*", flat):
        token = token.strip(".,-–/")
        if token:
            found["number"].add(token)
    return found


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rev = args[0] if args else "b4b82d4"
    old = subprocess.run(
        ["git", "show", f"{rev}:README.md"], capture_output=True, text=True, check=True
    ).stdout
    paths = ["README.md"] + sorted(glob.glob("docs/*.md"))
    new = normalise("\n".join(open(p, encoding="utf-8").read() for p in paths))
    missing = 0
    checked = 0
    for kind, items in facts(old).items():
        for item in sorted(items):
            checked += 1
            if item not in new and item not in REWORDED and MOVED.get(item, item) not in new:
                missing += 1
                print(f"missing {kind}: {item}")
    print(f"{checked} facts of README.md at {rev} checked against {len(paths)} files, {missing} missing")
    if "--sentences" in sys.argv:
        sentences = []
        for block in re.split(r"\n\s*\n|\n(?=#|\||- )", old):
            if block.lstrip().startswith(("#", "|", "```")):
                continue
            block = normalise(block).strip().removeprefix("- ")
            sentences += re.split(r"(?<=[.;!?])\s+(?=[A-Z`*(])", block)
        moved = [s for s in sentences if s.strip() and s.strip() not in new]
        for s in moved:
            print(f"reworded: {s.strip()}")
        print(f"{len(sentences)} sentences, {len(moved)} not found word for word")
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
