#!/usr/bin/env bash
# Benchmarks faber-db against the reference tools, side by side, in one run.
#
#   bench/run.sh [SIZES_MB] [RUNS]      (defaults: 1024 MB, 3 runs; sizes comma-separated:
#                                        bench/run.sh 1024,4096)
#
# FABER_BENCH_GROUPS picks what runs (default: all of postgres,mariadb,sqlite,registry,hook), to
# re-measure one part without the rest: FABER_BENCH_GROUPS=postgres bench/run.sh 1024,4096 3.
# `status` belongs to postgres. The report leaves out what was not measured.
#
# Needs the PostgreSQL and MariaDB servers of scripts/services.sh, pg_dump, pg_restore, psql,
# mysqldump, mysql, zstd, gzip, sha256sum, sqlite3, GNU time (/usr/bin/time) and python3. For each
# size it creates (once) the PostgreSQL database faber_bench_<SIZE_MB> with a realistic mix of
# text, numbers, jsonb and timestamps, a MariaDB database of the same name and rows, and an SQLite
# database of about SIZE_MB; then runs each faber-db command and its reference command alternately
# RUNS times and prints Markdown tables of medians and ratios (faber-db ÷ reference: below 1 is
# faster), each of issue 22's targets with ✓ or ✗, seconds per GB at each size with peak memory,
# the registry's and `status`'s latency, and the hook's (bench/hook.sh). The release build is
# used. Nothing here runs in CI.
set -euo pipefail

sizes=${1:-1024}
runs=${2:-3}
groups=${FABER_BENCH_GROUPS:-postgres,mariadb,sqlite,registry,hook}
# want GROUP: whether this run measures GROUP.
want() { [[ ",$groups," == *",$1,"* ]]; }
here=$(cd "$(dirname "$0")/.." && pwd)
pg="postgres://postgres@127.0.0.1:5432"
my="mysql://root@127.0.0.1:3306"
work=$(mktemp -d /tmp/faber-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

log() { printf 'bench: %s\n' "$*" >&2; }

# From the repository, so that its .cargo/config.toml applies (SQLite's sqlite_dbpage table: a
# build from elsewhere rebuilds SQLite without it, and SQLite backups then take a snapshot).
(cd "$here" && cargo build --release --quiet)
faber="$here/target/release/faber-db"

# The PostgreSQL database of SIZE_MB: about SIZE_MB of rows (~300 bytes each), made once and
# kept for later runs.
make_pg() {
  local size_mb=$1 db="faber_bench_$1" have rows
  have=$(psql -X -A -t "$pg/postgres" -c "SELECT count(*) FROM pg_database WHERE datname = '$db'")
  [ "$have" = 0 ] || return 0
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
}

# The MariaDB database of SIZE_MB: the same tables and rows (the sequence engine makes them).
make_mysql() {
  local size_mb=$1 db="faber_bench_$1" rows
  if mysql -h 127.0.0.1 -u root -N -e "SHOW DATABASES LIKE '$db'" | grep -q .; then
    return 0
  fi
  rows=$(( size_mb * 1024 * 1024 / 300 ))
  log "creating MariaDB $db with $rows rows (once)"
  mysql -h 127.0.0.1 -u root <<SQL
CREATE DATABASE $db;
USE $db;
CREATE TABLE accounts (id int PRIMARY KEY, name text, email text, created_at datetime);
INSERT INTO accounts SELECT seq, CONCAT('user ', seq), CONCAT('user', seq, '@example.com'),
  NOW() - INTERVAL seq MINUTE FROM seq_1_to_100000;
CREATE TABLE events (
  id bigint AUTO_INCREMENT PRIMARY KEY, account_id int, kind varchar(16), payload json,
  amount decimal(12, 2), created_at datetime, note text,
  FOREIGN KEY (account_id) REFERENCES accounts (id));
INSERT INTO events (account_id, kind, payload, amount, created_at, note)
  SELECT 1 + seq % 100000, ELT(1 + seq % 4, 'login', 'purchase', 'logout', 'view'),
         JSON_OBJECT('ip', CONCAT('10.0.', seq % 256, '.', seq % 251), 'items', seq % 7,
                     'agent', MD5(seq), 'tags', JSON_ARRAY(CONCAT('a', seq % 13), 'b')),
         (seq % 100000) / 100.0, NOW() - INTERVAL seq SECOND, REPEAT(MD5(seq * 7), 2)
  FROM seq_1_to_$rows;
CREATE INDEX events_account ON events (account_id);
SQL
}

# The SQLite database of about SIZE_MB, also made once.
make_sqlite() {
  local path="/tmp/faber_bench_$1.sqlite3"
  [ ! -f "$path" ] || return 0
  log "creating $path (once)"
  python3 - "$path" "$1" <<'PY'
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
}

# settle: each sample starts from the same state, whatever the one before it left behind: the
# page cache's dirty pages written out, and PostgreSQL's checkpointed. Without it a command paid
# for its predecessor's writes: a 4 GB restore timed right after multi-GB file writes and another
# load's checkpoints ran 1.22x its reference, against 0.96-1.05x when both start settled.
settle() {
  sync
  psql -X -q "$pg/postgres" -c CHECKPOINT >/dev/null
}

# time_of COMMAND...: wall seconds of one run, started settled (not timed).
time_of() {
  local start end
  settle
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/stderr" || { log "FAILED: $*"; cat "$work/stderr" >&2; }
  end=$(date +%s.%N)
  python3 -c "print(round($end - $start, 3))"
}

# Samples and facts, each under "SIZE|name" (SIZE 0: not of one size).
samples_file="$work/samples"
: > "$samples_file"
record() { printf '%s|%s=%s\n' "$size" "$1" "$2" >> "$samples_file"; }
fact() { printf '%s|%s=%s\n' "$size" "$1" "$2" >> "$work/facts"; }
# peak_rss COMMAND...: the peak resident memory of one run, in MB.
peak_rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1 | awk '{ printf "%.0f", $1 / 1024 }'; }

bench_size() {
  local size=$1 db="faber_bench_$1" sqlite_db="/tmp/faber_bench_$1.sqlite3" dir="$work/size-$1"
  if want postgres; then
    make_pg "$size"
    fact "PostgreSQL size" "$(psql -X -A -t "$pg/$db" -c "SELECT pg_size_pretty(pg_database_size('$db'))")"
  fi
  if want mariadb; then make_mysql "$size"; fi
  if want sqlite; then
    make_sqlite "$size"
    fact "SQLite MB" "$(du -m "$sqlite_db" | cut -f1)"
  fi

  # A project whose `bench` environment is the PostgreSQL database, `copy` a database restores
  # create, `my`/`mycopy` the same for MariaDB, and `lite` the SQLite one.
  mkdir -p "$dir/.fractary/plugins/faber-db"
  cat > "$dir/.fractary/plugins/faber-db/config.toml" <<EOF
[environments.bench]
url_env = "BENCH_DATABASE_URL"
retention = "1d"

[environments.copy]
url_env = "COPY_DATABASE_URL"
retention = "1d"

[environments.my]
url_env = "MY_DATABASE_URL"
retention = "1d"

[environments.mycopy]
url_env = "MYCOPY_DATABASE_URL"
retention = "1d"

[environments.lite]
url = "sqlite:$sqlite_db"
retention = "1d"
EOF
  export BENCH_DATABASE_URL="$pg/$db" COPY_DATABASE_URL="$pg/${db}_copy"
  export MY_DATABASE_URL="$my/$db" MYCOPY_DATABASE_URL="$my/${db}_copy"
  cd "$dir"
  local backups=".fractary/plugins/faber-db/backups"
  newest_file() { ls -t "$backups/$1"/backup-* | grep -v manifest | head -n 1; }
  newest_id() { basename "$(newest_file "$1")" | sed 's/\..*//'; }
  drop_copy() { psql -X -q "$pg/postgres" -c "DROP DATABASE IF EXISTS ${db}_copy" >/dev/null; }
  drop_mycopy() { mysql -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS ${db}_copy"; }
  faber_backup() { "$faber" -q backup bench "$@"; }

  for i in $(seq 1 "$runs"); do
    log "size $size MB: run $i of $runs"
    if want postgres; then bench_postgres; fi
    if want mariadb; then bench_mariadb; fi
    if want sqlite; then bench_sqlite; fi
    for env in bench copy my mycopy lite; do
      "$faber" -q cleanup "$env" --keep-last 1 --yes >/dev/null 2>&1 || true
    done
  done
  if want postgres; then
    fact "RSS backup (PostgreSQL)" "$(peak_rss "$faber" -q backup bench)"
    fact "RSS restore (PostgreSQL)" "$(peak_rss "$faber" -q restore bench --from "$(newest_id bench)" --yes --no-safety-backup)"
  fi
  if want mariadb; then fact "RSS backup (MariaDB)" "$(peak_rss "$faber" -q backup my)"; fi
  if want sqlite; then fact "RSS backup (SQLite)" "$(peak_rss "$faber" -q backup lite)"; fi
  cd "$work"
}

# One run's PostgreSQL samples (bench_size's variables): backups, verify, restores, status.
bench_postgres() {
  record "pg_dump -Fp -f /dev/null" "$(time_of pg_dump -Fp -f /dev/null "$pg/$db")"
  record "faber-db backup (default: zstd)" "$(time_of faber_backup)"
  zstd_file=$(newest_file bench)
  zstd_id=$(newest_id bench)
  record "pg_dump -Fp | zstd -3" "$(time_of sh -c "pg_dump -Fp '$pg/$db' | zstd -3 -q > '$work/ref.sql.zst'")"
  record "faber-db backup --compression gzip" "$(time_of faber_backup --compression gzip)"
  record "pg_dump -Fp | gzip -6" "$(time_of sh -c "pg_dump -Fp '$pg/$db' | gzip -6 > '$work/ref.sql.gz'")"
  record "faber-db backup --format custom" "$(time_of faber_backup --format custom)"
  custom_id=$(newest_id bench)
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
  # Five samples a run: a single one measured whatever the machine was doing at that moment.
  for _ in 1 2 3 4 5; do
    record "faber-db status bench (one PostgreSQL environment)" "$(time_of "$faber" status bench)"
  done
  fact "zstd backup bytes" "$(stat -c %s "$zstd_file")"
  fact "pg_dump | zstd -3 bytes" "$(stat -c %s "$work/ref.sql.zst")"
}

# One run's MariaDB samples: backup, restore, verify --deep.
bench_mariadb() {
  record "faber-db backup my (MariaDB, zstd)" "$(time_of "$faber" -q backup my)"
  my_id=$(newest_id my)
  my_file=$(newest_file my)
  record "mysqldump --single-transaction | zstd -3" "$(time_of sh -c "mysqldump -h 127.0.0.1 -u root --single-transaction --routines --triggers --events $db | zstd -3 -q > '$work/ref-my.sql.zst'")"
  drop_mycopy
  record "faber-db restore (MariaDB zstd backup, new db)" "$(time_of "$faber" -q restore mycopy --from "$my_id" --yes)"
  drop_mycopy
  record "create database + zstd -dc | mysql" "$(time_of sh -c "mysql -h 127.0.0.1 -u root -e 'CREATE DATABASE ${db}_copy' && zstd -dc -q '$my_file' | mysql -h 127.0.0.1 -u root ${db}_copy")"
  drop_mycopy
  record "faber-db verify --deep (MariaDB backup)" "$(time_of "$faber" -q verify --deep "$my_id")"
}

# One run's SQLite samples: the two backups against sqlite3's own.
bench_sqlite() {
  record "faber-db backup lite (SQLite, zstd)" "$(time_of "$faber" -q backup lite)"
  record "faber-db backup lite --compression none" "$(time_of "$faber" -q backup lite --compression none)"
  record "sqlite3 .backup" "$(time_of sqlite3 "$sqlite_db" ".backup '$work/ref.sqlite3'")"
  rm -f "$work/ref.sqlite3"
  record "sqlite3 .backup && zstd -T0 -3" "$(time_of sh -c "sqlite3 '$sqlite_db' \".backup '$work/ref.sqlite3'\" && zstd -T0 -3 -q --rm -f '$work/ref.sqlite3'")"
  rm -f "$work/ref.sqlite3" "$work/ref.sqlite3.zst"
}

IFS=, read -r -a size_list <<< "$sizes"
for size in "${size_list[@]}"; do
  bench_size "$size"
done

# The registry with 10,000 entries: list, and the 10,001st backup (an SQLite one).
size=0
bench_registry() {
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
}
if want registry; then bench_registry; fi

# The hook, as every Bash command of an agent pays for it.
if want hook; then
  "$here/bench/hook.sh" 50 --json > "$work/hook.json"
else
  echo '{"rows": []}' > "$work/hook.json"
fi

touch "$work/facts"
# Every sample, not only the medians, kept for a second look at a row that surprises.
cp "$samples_file" /tmp/faber-bench-samples.txt
log "every sample: /tmp/faber-bench-samples.txt"
python3 "$here/bench/report.py" "$runs" "$sizes" "$samples_file" "$work/facts" "$work/hook.json"
