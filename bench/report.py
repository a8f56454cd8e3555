"""The tables bench/run.sh prints: per size, faber-db against the reference tools with issue 22's
targets marked; seconds per GB at each size and peak memory; the registry, `status` and the hook.

    python3 bench/report.py RUNS SIZES SAMPLES FACTS HOOK_JSON

SAMPLES and FACTS hold lines `SIZE|name=value` (SIZE 0: of no one size), one sample per line. What
was not measured (FABER_BENCH_GROUPS left it out) is left out of the tables and the targets."""

import json
import statistics
import sys
from collections import defaultdict

runs, sizes = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
samples = defaultdict(list)
for line in open(sys.argv[3]):
    key, value = line.rstrip("\n").split("=", 1)
    samples[key].append(float(value))
facts = {}
for line in open(sys.argv[4]):
    key, value = line.rstrip("\n").split("=", 1)
    facts[key] = value
hook = json.load(open(sys.argv[5]))
med = {k: statistics.median(v) for k, v in samples.items()}


def m(size, name):
    return med[f"{size}|{name}"]


def has(size, *names):
    return all(f"{size}|{n}" in med for n in names)


# (faber-db, reference, target ratio or None): the pairs, in the order they are printed.
PAIRS = [
    ("faber-db backup (default: zstd)", "pg_dump -Fp -f /dev/null", None),
    ("faber-db backup (default: zstd)", "pg_dump -Fp | zstd -3", None),
    ("faber-db backup --compression gzip", "pg_dump -Fp | gzip -6", None),
    ("faber-db backup --format custom", "pg_dump -Fc", None),
    ("faber-db restore (zstd backup, new db)", "createdb + zstd -dc | psql", 1.10),
    ("faber-db restore (custom backup, new db)", "createdb + pg_restore -j2 (pg_dump -Fc file)", 1.0),
    ("faber-db verify --checksum-only", "sha256sum (same file)", None),
    ("faber-db verify (zstd backup)", "sha256sum (same file)", None),
    ("faber-db verify (zstd backup)", "sha256sum + zstd -t (same file)", None),
    ("faber-db backup my (MariaDB, zstd)", "mysqldump --single-transaction | zstd -3", 1.10),
    ("faber-db restore (MariaDB zstd backup, new db)", "create database + zstd -dc | mysql", 1.15),
    ("faber-db backup lite (SQLite, zstd)", "sqlite3 .backup && zstd -T0 -3", 1.0),
    ("faber-db backup lite (SQLite, zstd)", "sqlite3 .backup", None),
    ("faber-db backup lite --compression none", "sqlite3 .backup", 1.2),
]


def mark(ok):
    return "✓" if ok else "✗"


def cell(text):
    """`text` in a Markdown table's cell: its `|` escaped."""
    return text.replace("|", "\\|")


targets = []
for size in sizes:
    print(f"### {size} MB\n")
    print(
        f"PostgreSQL database of {facts.get(f'{size}|PostgreSQL size', '?')}, MariaDB database of the "
        f"same rows, SQLite database of {facts.get(f'{size}|SQLite MB', '?')} MB; medians of {runs} "
        "runs, seconds.\n"
    )
    print("| faber-db | s | reference | s | ratio | target |")
    print("|---|---|---|---|---|---|")
    for ours, ref, target in PAIRS:
        if not has(size, ours, ref):
            continue
        ratio = m(size, ours) / m(size, ref)
        shown = ""
        if target is not None:
            shown = f"≤ {target:.2f} {mark(ratio <= target)}"
            targets.append((f"{ours} ÷ {ref} ({size} MB)", f"{ratio:.2f}", f"≤ {target:.2f}", ratio <= target))
        print(f"| {cell(ours)} | {m(size, ours):.2f} | {cell(ref)} | {m(size, ref):.2f} | {ratio:.2f} | {shown} |")
    print()
    if has(size, "faber-db verify --deep (MariaDB backup)"):
        deep = m(size, "faber-db verify --deep (MariaDB backup)")
        print(f"faber-db verify --deep of the MariaDB backup: {deep:.2f} s.")
    if f"{size}|zstd backup bytes" in facts:
        ours_b = int(facts[f"{size}|zstd backup bytes"])
        ref_b = int(facts[f"{size}|pg_dump | zstd -3 bytes"])
        print(f"zstd backup: {ours_b / 1e6:.1f} MB (pg_dump | zstd -3: {ref_b / 1e6:.1f} MB).")
    print()

# Seconds per GB at each size, and whether that stays flat (±15% of the mean) across sizes.
print("### Scaling: seconds per GB\n")
commands = sorted({ours for ours, _, _ in PAIRS} | {"faber-db verify --deep (MariaDB backup)"})
print("| command | " + " | ".join(f"{s} MB" for s in sizes) + " | flat ±15% |")
print("|---|" + "---|" * len(sizes) + "---|")
for c in commands:
    if not all(has(s, c) for s in sizes):
        continue
    per_gb = [m(s, c) / (s / 1024) for s in sizes]
    mean = statistics.mean(per_gb)
    flat = all(abs(v - mean) <= 0.15 * mean for v in per_gb)
    shown = mark(flat) if len(sizes) > 1 else "— (one size)"
    if len(sizes) > 1:
        targets.append((f"{c}: seconds per GB flat", "/".join(f"{v:.2f}" for v in per_gb), "±15%", flat))
    print(f"| {c} | " + " | ".join(f"{v:.2f}" for v in per_gb) + f" | {shown} |")
print("\n| peak RSS, MB | " + " | ".join(f"{s} MB" for s in sizes) + " | < 100 |")
print("|---|" + "---|" * len(sizes) + "---|")
for what in ["RSS backup (PostgreSQL)", "RSS backup (MariaDB)", "RSS backup (SQLite)", "RSS restore (PostgreSQL)"]:
    if not all(f"{s}|{what}" in facts for s in sizes):
        continue
    values = [int(facts[f"{s}|{what}"]) for s in sizes]
    ok = all(v < 100 for v in values)
    targets.append((what, "/".join(str(v) for v in values), "< 100 MB", ok))
    print(f"| {what[4:]} | " + " | ".join(str(v) for v in values) + f" | {mark(ok)} |")

print("\n### Registry, status, hook\n")
print("| what | ms | target |")
print("|---|---|---|")
LIMITS = {"list --all, 10,000 entries": 100, "list (newest 20 of 10,000)": 100}
for k in ["list --all, 10,000 entries", "list (newest 20 of 10,000)", "backup #10,001 (SQLite, all of it)",
          "the same backup, empty registry", "registry commit of a backup at 10,000 entries (-v)"]:
    if not has(0, k):
        continue
    ms = m(0, k) * 1000
    limit = LIMITS.get(k)
    shown = f"< {limit} {mark(ms < limit)}" if limit else ""
    if limit:
        targets.append((k, f"{ms:.0f} ms", f"< {limit} ms", ms < limit))
    print(f"| {k} | {ms:.0f} | {shown} |")
if has(0, "backup #10,001 (SQLite, all of it)", "the same backup, empty registry"):
    cost = m(0, "backup #10,001 (SQLite, all of it)") - m(0, "the same backup, empty registry")
    print(f"| registry cost of the 10,001st backup (the difference) | {cost * 1000:.0f} | |")
for size in sizes:
    if not has(size, "faber-db status bench (one PostgreSQL environment)"):
        continue
    ms = m(size, "faber-db status bench (one PostgreSQL environment)") * 1000
    targets.append((f"status of one PostgreSQL environment ({size} MB)", f"{ms:.0f} ms", "< 60 ms", ms < 60))
    print(f"| status of one PostgreSQL environment ({size} MB database) | {ms:.0f} | < 60 {mark(ms < 60)} |")
for kind, where, command, how, median, p90 in hook["rows"]:
    if where != "project" or how != "launcher":
        continue
    limit = 50 if kind == "through" else 150
    targets.append((f"hook, `{command}` ({kind})", f"{median:.1f} ms", f"< {limit} ms", median < limit))
    print(f"| hook through the launcher, `{command}` (median; p90 {p90:.1f}) | {median:.1f} | < {limit} {mark(median < limit)} |")

print("\n### Targets\n")
print("| target | measured | limit | |")
print("|---|---|---|---|")
for name, measured, limit, ok in targets:
    print(f"| {cell(name)} | {measured} | {limit} | {mark(ok)} |")
met = sum(1 for t in targets if t[3])
print(f"\n{met} of {len(targets)} targets met.")
