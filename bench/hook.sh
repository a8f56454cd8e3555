#!/usr/bin/env bash
# Times the Claude Code hook on commands it has nothing to say about: the cost every Bash call
# of an agent pays. Each command runs RUNS times (default 100), through the plugin's launcher
# (bin/faber-db, as Claude Code runs it) and straight through the release binary, in a project
# that has a faber-db config and in a directory that has none; prints the median and the 90th
# percentile in ms beside `true` run the same way (process start-up alone). Target: median
# below 50 ms. Nothing here runs in CI.
#
#   bench/hook.sh [RUNS]
set -euo pipefail

runs=${1:-100}
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
faber="$here/target/release/faber-db"
work=$(mktemp -d /tmp/faber-hook-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/project" "$work/plain" "$work/cache"
(cd "$work/project" && "$faber" init >/dev/null)

python3 - "$runs" "$faber" "$here/bin/faber-db" "$work" <<'PY'
import json, os, statistics, subprocess, sys, time

runs, faber, launcher, work = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
env = dict(os.environ, FABER_DB_BIN=faber, XDG_CACHE_HOME=os.path.join(work, "cache"))

def timed(argv, stdin, cwd):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(argv, input=stdin, cwd=cwd, env=env, capture_output=True)
        samples.append((time.perf_counter() - start) * 1000)
        assert out.returncode == 0 and not out.stdout, (argv, out)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1]

rows = []
for where in ["project", "plain"]:
    cwd = os.path.join(work, where)
    for command in ["ls -la", "cargo build --release && git status"]:
        stdin = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash",
                            "tool_input": {"command": command}, "cwd": cwd}).encode()
        for how, argv in [("launcher", [launcher, "hook", "pre-tool-use"]),
                          ("binary", [faber, "hook", "pre-tool-use"])]:
            rows.append((where, command, how, *timed(argv, stdin, cwd)))
base = timed(["true"], b"", work)
print(f"| where | command | through | median ms | p90 ms |")
print(f"|---|---|---|---|---|")
for where, command, how, med, p90 in rows:
    print(f"| {where} | `{command}` | {how} | {med:.1f} | {p90:.1f} |")
print(f"| — | `true` (process start-up) | — | {base[0]:.1f} | {base[1]:.1f} |")
PY
