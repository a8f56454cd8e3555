#!/usr/bin/env bash
# Benchmarks faber-db against the reference tools, side by side, in one run.
#
#   bench/run.sh [SIZE_MB] [RUNS]      (defaults: 1024 MB, 3 runs)
#
# Needs the PostgreSQL server of scripts/services.sh, pg_dump, pg_restore, psql, zstd, gzip,
# sha256sum, sqlite3, GNU time (/usr/bin/time) and python3. Creates (once) the database
# faber_bench_<SIZE_MB> with a realistic mix of text, numbers, jsonb and timestamps, and an SQLite
# database of about SIZE_MB, then runs each faber-db command and its reference command
# alternately RUNS times and prints a Markdown table of medians and ratios (faber-db ÷
# reference: below 1 is faster). The release build is used. Nothing here runs in CI.
set -euo pipefail

size_mb=${1:-1024}
runs=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
db="faber_bench_${size_mb}"
pg="postgres://postgres@127.0.0.1:5432"
work=$(mktemp -d /tmp/faber-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

log() { printf 'bench: %s\n' "$*" >&2; }

cargo build --release --quiet --manifest-path "$here/Cargo.toml"
faber="$here/target/release/faber-db"

# The database: about SIZE_MB of rows (~300 bytes each), made once and kept for later runs.
have=$(psql -X -A -t "$pg/postgres" -c "SELECT count(*) FROM pg_database WHERE datname = '$db'")
if [ "$have" = 0 ]; then
  rows=$(( size_mb * 1024 * 1024 / 300 ))
  log "creating $db with $rows rows (once)"
  psql -X -q "$pg/postgres" -c "CREATE DATABASE $db"
  psql -X -q "$pg/$db" -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE accounts (id int PRIMARY KEY, name text, email text, created_at timestamptz);
INSERT INTO accounts SELECT g, 'user ' || g, 'user' || g || '@example.com', now() - g * interval '1 minute'
  FROM generate_series(1, 100000) g;
CREATE TABLE events (
  id bigserial PRIMARY KEY, account_id int REFERENCES accounts (id), kind text, payload jsonb,
  amount numeric(12, 2), created_at timestamptz, note text);
INSERT INTO events (account_id, kind, payload, amount, created_at, note)
  SELECT 1 + g % 100000, (ARRAY['login', 'purchase', 'logout', 'view'])[1 + g % 4],
         jsonb_build_object('ip', '10.0.' || (g % 256) || '.' || (g % 251), 'items', g % 7,
                            'agent', md5(g::text), 'tags', jsonb_build_array('a' || g % 13, 'b')),
         (g % 100000) / 100.0, now() - g * interval '1 second', repeat(md5((g * 7)::text), 2)
  FROM generate_series(1, $rows) g;
CREATE INDEX events_account ON events (account_id);
ANALYZE;
SQL
fi
db_size=$(psql -X -A -t "$pg/$db" -c "SELECT pg_size_pretty(pg_database_size('$db'))")

# An SQLite database of about SIZE_MB, also made once.
sqlite_db="/tmp/faber_bench_${size_mb}.sqlite3"
if [ ! -f "$sqlite_db" ]; then
  log "creating $sqlite_db (once)"
  python3 - "$sqlite_db" "$size_mb" <<'PY'
import hashlib, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, account_id INT, kind TEXT, payload TEXT, "
          "amount REAL, created_at TEXT, note TEXT)")
c.execute("CREATE INDEX events_account ON events (account_id)")
rows = int(sys.argv[2]) * 1024 * 1024 // 210
for start in range(0, rows, 100000):
    c.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", (
        (g, g % 100000, ("login", "purchase", "logout", "view")[g % 4],
         '{"ip": "10.0.%d.%d", "items": %d, "agent": "%s"}'
         % (g % 256, g % 251, g % 7, hashlib.md5(str(g).encode()).hexdigest()),
         (g % 100000) / 100.0, "2026-11-%02d 10:%02d:%02d" % (1 + g % 28, g % 60, g % 60),
         hashlib.md5(str(g * 7).encode()).hexdigest() * 2)
        for g in range(start, min(rows, start + 100000))))
    c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
PY
fi
sqlite_size=$(du -m "$sqlite_db" | cut -f1)

# A project whose `bench` environment is that database, `copy` a database restores create, and
# `lite` the SQLite one.
mkdir -p "$work/project/.fractary/plugins/faber-db"
cat > "$work/project/.fractary/plugins/faber-db/config.toml" <<EOF
[environments.bench]
url_env = "BENCH_DATABASE_URL"
retention = "1d"

[environments.copy]
url_env = "COPY_DATABASE_URL"
retention = "1d"

[environments.lite]
url = "sqlite:$sqlite_db"
retention = "1d"
EOF
export BENCH_DATABASE_URL="$pg/$db" COPY_DATABASE_URL="$pg/${db}_copy"
cd "$work/project"

# time_of COMMAND...: wall seconds of one run.
time_of() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/stderr" || { log "FAILED: $*"; cat "$work/stderr" >&2; }
  end=$(date +%s.%N)
  python3 -c "print(round($end - $start, 3))"
}

declare -A samples
record() { samples[$1]="${samples[$1]:-} $2"; }

faber_backup() { "$faber" -q backup bench "$@"; }
newest_file() { ls -t .fractary/plugins/faber-db/backups/bench/backup-* | grep -v manifest | head -n 1; }
newest_id() { basename "$(newest_file)" | sed 's/\..*//'; }
drop_copy() { psql -X -q "$pg/postgres" -c "DROP DATABASE IF EXISTS ${db}_copy" >/dev/null; }
# peak_rss COMMAND...: the peak resident memory of one run, in MB.
peak_rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1 | awk '{ printf "%.0f", $1 / 1024 }'; }

for i in $(seq 1 "$runs"); do
  log "run $i of $runs"
  record "pg_dump -Fp -f /dev/null" "$(time_of pg_dump -Fp -f /dev/null "$pg/$db")"
  record "faber-db backup (default: zstd)" "$(time_of faber_backup)"
  zstd_file=$(newest_file)
  zstd_id=$(newest_id)
  record "pg_dump -Fp | zstd -3" "$(time_of sh -c "pg_dump -Fp '$pg/$db' | zstd -3 -q > '$work/ref.sql.zst'")"
  record "faber-db backup --compression gzip" "$(time_of faber_backup --compression gzip)"
  record "pg_dump -Fp | gzip -6" "$(time_of sh -c "pg_dump -Fp '$pg/$db' | gzip -6 > '$work/ref.sql.gz'")"
  record "faber-db backup --format custom" "$(time_of faber_backup --format custom)"
  custom_id=$(newest_id)
  record "pg_dump -Fc" "$(time_of pg_dump -Fc -f "$work/ref.dump" "$pg/$db")"
  record "faber-db verify (zstd backup)" "$(time_of "$faber" -q verify "$zstd_id")"
  record "faber-db verify --checksum-only" "$(time_of "$faber" -q verify --checksum-only "$zstd_id")"
  record "sha256sum (same file)" "$(time_of sha256sum "$zstd_file")"
  record "sha256sum + zstd -t (same file)" "$(time_of sh -c "sha256sum '$zstd_file' && zstd -t -q '$zstd_file'")"
  drop_copy
  record "faber-db restore (zstd backup, new db)" "$(time_of "$faber" -q restore copy --from "$zstd_id" --yes)"
  drop_copy
  record "createdb + zstd -dc | psql" "$(time_of sh -c "createdb -h 127.0.0.1 -U postgres ${db}_copy && zstd -dc -q '$zstd_file' | psql -X -q -o /dev/null '$pg/${db}_copy'")"
  drop_copy
  record "faber-db restore (custom backup, new db)" "$(time_of "$faber" -q restore copy --from "$custom_id" --yes)"
  drop_copy
  record "createdb + pg_restore -j2 (pg_dump -Fc file)" "$(time_of sh -c "createdb -h 127.0.0.1 -U postgres ${db}_copy && pg_restore -j2 -d '$pg/${db}_copy' '$work/ref.dump'")"
  drop_copy
  record "faber-db backup lite (SQLite, zstd)" "$(time_of "$faber" -q backup lite)"
  record "faber-db backup lite --compression none" "$(time_of "$faber" -q backup lite --compression none)"
  record "sqlite3 .backup" "$(time_of sqlite3 "$sqlite_db" ".backup '$work/ref.sqlite3'")"
  rm -f "$work/ref.sqlite3"
  sizes_zstd=$(stat -c %s "$zstd_file")
  sizes_ref_zstd=$(stat -c %s "$work/ref.sql.zst")
  "$faber" -q cleanup bench --keep-last 1 --yes >/dev/null 2>&1 || true
  "$faber" -q cleanup copy --keep-last 1 --yes >/dev/null 2>&1 || true
  "$faber" -q cleanup lite --keep-last 1 --yes >/dev/null 2>&1 || true
done
rss_pg=$(peak_rss "$faber" -q backup bench)
rss_lite=$(peak_rss "$faber" -q backup lite)
rss_restore=$(peak_rss "$faber" -q restore bench --from "$(newest_id)" --yes --no-safety-backup)

# The registry with 10,000 entries: list, and the 10,001st backup (an SQLite one).
mkdir -p "$work/reg/.fractary/plugins/faber-db" "$work/reg/db"
cat > "$work/reg/.fractary/plugins/faber-db/config.toml" <<EOF
[environments.dev]
url = "sqlite:db/dev.sqlite3"
EOF
(cd "$work/reg" && python3 - <<'PY'
import sqlite3
c = sqlite3.connect("db/dev.sqlite3"); c.execute("CREATE TABLE t (x)"); c.execute("INSERT INTO t VALUES (1)"); c.commit()
PY
"$faber" -q backup dev >/dev/null
python3 - <<'PY'
import json, copy
path = ".fractary/plugins/faber-db/backups/backups.json"
reg = json.load(open(path))
one = reg["backups"][0]
for i in range(1, 10000):
    b = copy.deepcopy(one)
    b["id"] = f"backup-20200101-000000-n{i}"
    b["file"] = f"dev/{b['id']}.sqlite3.gz"
    reg["backups"].append(b)
json.dump(reg, open(path, "w"), indent=2)
PY
)
# The same small backup into an empty registry: the difference is what 10,000 entries cost.
mkdir -p "$work/empty/.fractary/plugins/faber-db"
cp "$work/reg/.fractary/plugins/faber-db/config.toml" "$work/empty/.fractary/plugins/faber-db/"
ln -s "$work/reg/db" "$work/empty/db"
for i in $(seq 1 "$runs"); do
  record "list --all, 10,000 entries" "$(cd "$work/reg" && time_of "$faber" list --all)"
  record "list (newest 20 of 10,000)" "$(cd "$work/reg" && time_of "$faber" list)"
  record "backup #10,001 (SQLite, all of it)" "$(cd "$work/reg" && time_of "$faber" -q backup dev)"
  record "the same backup, empty registry" "$(cd "$work/empty" && time_of "$faber" -q backup dev)"
  # The commit alone (manifest, registry entry, final name), as the backup reports it with -v.
  ms=$(cd "$work/reg" && "$faber" -v backup dev | sed -n 's/.*registered in \([0-9]*\) ms.*/\1/p')
  record "registry commit of a backup at 10,000 entries (-v)" "$(python3 -c "print(${ms:-0} / 1000)")"
done

python3 - "$runs" "$db_size" "${sizes_zstd:-0}" "${sizes_ref_zstd:-0}" "$sqlite_size" "$rss_pg" "$rss_lite" "$rss_restore" <<PY
import statistics, sys
runs, db_size, ours, ref, sqlite_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rss_pg, rss_lite, rss_restore = sys.argv[6:9]
raw = """$(for k in "${!samples[@]}"; do echo "$k=${samples[$k]}"; done)"""
med = {}
for line in raw.strip().splitlines():
    name, values = line.split("=", 1)
    med[name] = statistics.median(float(v) for v in values.split())
pairs = [
    ("faber-db backup (default: zstd)", "pg_dump -Fp -f /dev/null"),
    ("faber-db backup (default: zstd)", "pg_dump -Fp | zstd -3"),
    ("faber-db backup --compression gzip", "pg_dump -Fp | gzip -6"),
    ("faber-db backup --format custom", "pg_dump -Fc"),
    ("faber-db restore (zstd backup, new db)", "createdb + zstd -dc | psql"),
    ("faber-db restore (custom backup, new db)", "createdb + pg_restore -j2 (pg_dump -Fc file)"),
    ("faber-db verify --checksum-only", "sha256sum (same file)"),
    ("faber-db verify (zstd backup)", "sha256sum (same file)"),
    ("faber-db verify (zstd backup)", "sha256sum + zstd -t (same file)"),
    ("faber-db backup lite (SQLite, zstd)", "sqlite3 .backup"),
    ("faber-db backup lite --compression none", "sqlite3 .backup"),
]
print(f"PostgreSQL database of {db_size}, SQLite database of {sqlite_size} MB; medians of {runs} runs, seconds.\n")
print("| faber-db | s | reference | s | ratio |")
print("|---|---|---|---|---|")
for a, b in pairs:
    print(f"| {a} | {med[a]:.2f} | {b} | {med[b]:.2f} | {med[a] / med[b]:.2f} |")
print(f"\nzstd backup: {ours / 1e6:.1f} MB (pg_dump | zstd -3: {ref / 1e6:.1f} MB).")
print(f"Peak memory (RSS): PostgreSQL backup {rss_pg} MB, SQLite backup {rss_lite} MB, restore {rss_restore} MB.\n")
print("| registry | ms |")
print("|---|---|")
for k in ["list --all, 10,000 entries", "list (newest 20 of 10,000)", "backup #10,001 (SQLite, all of it)", "the same backup, empty registry", "registry commit of a backup at 10,000 entries (-v)"]:
    print(f"| {k} | {med[k] * 1000:.0f} |")
cost = med["backup #10,001 (SQLite, all of it)"] - med["the same backup, empty registry"]
print(f"| registry cost of the 10,001st backup (the difference) | {cost * 1000:.0f} |")
PY
