#!/usr/bin/env bash
# Times the Claude Code hook: on commands it has nothing to say about (the cost every Bash call of
# an agent pays), and on a migration it recognises and decides about without taking a backup.
# Each command runs RUNS times (default 100), through the plugin's launcher (bin/faber-db, as
# Claude Code runs it) and straight through the release binary, in a project that has a faber-db
# config and in a directory that has none; prints the median and the 90th percentile in ms beside
# `true` run the same way (process start-up alone), and issue 22's targets: a median below 50 ms
# for a command it lets through, below 150 ms for a decision. With --json, the rows as JSON (for
# bench/run.sh). Nothing here runs in CI.
#
#   bench/hook.sh [RUNS] [--json]
set -euo pipefail

runs=${1:-100}
format=${2:-table}
here=$(cd "$(dirname "$0")/.." && pwd)
# From the repository, so that its .cargo/config.toml applies (SQLite's sqlite_dbpage table: a
# build from elsewhere rebuilds SQLite without it, and SQLite backups then take a snapshot).
(cd "$here" && cargo build --release --quiet)
faber="$here/target/release/faber-db"
work=$(mktemp -d /tmp/faber-hook-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/project" "$work/plain" "$work/cache"
(cd "$work/project" && "$faber" init >/dev/null)

python3 - "$runs" "$faber" "$here/bin/faber-db" "$work" "$format" <<'PY'
import json, os, statistics, subprocess, sys, time

runs, faber, launcher, work, form = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
env = dict(os.environ, FABER_DB_BIN=faber, XDG_CACHE_HOME=os.path.join(work, "cache"))

def timed(argv, stdin, cwd, quiet=True):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(argv, input=stdin, cwd=cwd, env=env, capture_output=True)
        samples.append((time.perf_counter() - start) * 1000)
        assert out.returncode == 0 and (not quiet or not out.stdout), (argv, out)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1]

def hook_input(command, cwd):
    return json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash",
                       "tool_input": {"command": command}, "cwd": cwd}).encode()

rows = []
for where in ["project", "plain"]:
    cwd = os.path.join(work, where)
    for command in ["ls -la", "cargo build --release && git status"]:
        for how, argv in [("launcher", [launcher, "hook", "pre-tool-use"]),
                          ("binary", [faber, "hook", "pre-tool-use"])]:
            rows.append(("through", where, command, how, *timed(argv, hook_input(command, cwd), cwd)))
# A migration the hook recognises, of an environment that takes no backup before it (dev in the
# config `faber-db init` writes): read, matched, decided — nothing dumped.
cwd = os.path.join(work, "project")
command = "FABER_ENV=dev npx prisma migrate deploy"
for how, argv in [("launcher", [launcher, "hook", "pre-tool-use"]),
                  ("binary", [faber, "hook", "pre-tool-use"])]:
    rows.append(("decided", "project", command, how,
                 *timed(argv, hook_input(command, cwd), cwd, quiet=False)))
base = timed(["true"], b"", work)
if form == "--json":
    print(json.dumps({"rows": rows, "true": base}))
    sys.exit(0)
print(f"| where | command | through | median ms | p90 ms | target |")
print(f"|---|---|---|---|---|---|")
for kind, where, command, how, med, p90 in rows:
    limit = 50 if kind == "through" else 150
    mark = "✓" if med < limit else "✗"
    print(f"| {where} | `{command}` | {how} | {med:.1f} | {p90:.1f} | < {limit} {mark} |")
print(f"| — | `true` (process start-up) | — | {base[0]:.1f} | {base[1]:.1f} | |")
PY
