#!/bin/sh
# Installs a faber-db release binary, checked against the release's SHA256SUMS:
#
#   curl -fsSL https://github.com/fractary/faber-db/raw/main/scripts/install.sh | sh
#   curl -fsSL …/install.sh | sh -s -- --version 0.1.0 --dir /usr/local/bin
#
# Options (or their variables):
#   --version V   the release to install (FABER_DB_VERSION; default: this script's own, below)
#   --dir DIR     where the binary goes (FABER_DB_INSTALL_DIR; default: ~/.local/bin)
#   --url BASE    where the release's files are (FABER_DB_RELEASE_URL; default: the GitHub
#                 release of that version): BASE/SHA256SUMS and BASE/faber-db-V-TARGET.tar.gz
# Exit codes: 0 installed; 1 it could not be (no archive for this platform, a download that
# failed, a directory it cannot write); 5 the archive does not match its SHA-256 (nothing
# installed). Needs curl, sha256sum or shasum, tar and gzip. A password in the URL is best given
# in FABER_DB_RELEASE_URL: an option's value shows in the process list.
#
# The plugin's launcher (bin/faber-db) reads the functions below (FABER_DB_INSTALL_LIB=1), so
# that the plugin and this script download and check a release the same way.

fdb_default_version=0.1.0
fdb_repository=https://github.com/fractary/faber-db

# The target triple of the release archive for this machine; nothing where none is built
# (other systems, or a Linux whose C library is musl: the Linux binaries are glibc ones).
fdb_target() {
    fdb_os=$(uname -s 2>/dev/null) || return 0
    fdb_arch=$(uname -m 2>/dev/null) || return 0
    case $fdb_os/$fdb_arch in
    Linux/x86_64 | Linux/amd64) fdb_t=x86_64-unknown-linux-gnu ;;
    Linux/aarch64 | Linux/arm64) fdb_t=aarch64-unknown-linux-gnu ;;
    Darwin/x86_64) fdb_t=x86_64-apple-darwin ;;
    Darwin/arm64 | Darwin/aarch64) fdb_t=aarch64-apple-darwin ;;
    *) return 0 ;;
    esac
    case $fdb_t in
    *-linux-gnu) ! ldd --version 2>&1 | grep -qi musl || return 0 ;;
    esac
    printf '%s\n' "$fdb_t"
}

# $1 if it is a plain http(s) URL made only of a URL's characters (it goes into curl's config,
# between quotes), without a trailing slash; nothing otherwise.
fdb_url() {
    case $1 in
    http://?* | https://?*) ;;
    *) return 0 ;;
    esac
    # (A pattern, not a command substitution: that would drop newlines at the end, and a
    # newline would start a curl option of the URL's choosing.)
    case $1 in
    *[!A-Za-z0-9._~:/?#@!\$\&\(\)*+,\;=%-]*) return 0 ;;
    esac
    printf '%s\n' "${1%/}"
}

# The URL as shown: without a user name or password in it (up to the last @ before the path).
fdb_shown_url() {
    printf '%s\n' "$1" | sed 's#^\([a-z]*://\)[^/]*@#\1#'
}

fdb_sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        return 1
    fi
}

# Why this machine cannot download and check an archive; nothing when it can.
fdb_missing_tools() {
    if ! command -v curl >/dev/null 2>&1; then
        echo "curl is not installed"
    elif ! command -v sha256sum >/dev/null 2>&1 && ! command -v shasum >/dev/null 2>&1; then
        echo "neither sha256sum nor shasum is installed to check the archive"
    elif ! command -v tar >/dev/null 2>&1 || ! command -v gzip >/dev/null 2>&1; then
        echo "tar and gzip are needed to unpack the archive"
    fi
}

# fdb_fetch URL FILE: downloads URL into FILE with curl, giving up after
# FABER_DB_DOWNLOAD_TIMEOUT seconds (default 30) without a byte, and following redirects to
# https only; on failure fdb_error says why. The URL (checked by fdb_url) reaches curl through
# its config on stdin, never on a command line, where a password in it would show.
fdb_fetch() {
    fdb_stall=${FABER_DB_DOWNLOAD_TIMEOUT:-30}
    case $fdb_stall in '' | *[!0-9]* | 0) fdb_stall=30 ;; esac
    printf 'url = "%s"\n' "$1" |
        curl -fsSL --proto '=http,https' --proto-redir '=https' \
            --connect-timeout "$fdb_stall" --speed-limit 1 --speed-time "$fdb_stall" \
            --max-time 1800 -o "$2" -K - 2>"$2.err"
    fdb_rc=$?
    fdb_error=$(tr '\n' ' ' <"$2.err" 2>/dev/null | sed 's/ *$//')
    rm -f "$2.err"
    [ "$fdb_rc" -eq 0 ] && return 0
    rm -f "$2"
    case $fdb_rc in 28) fdb_error="no answer for $fdb_stall s" ;; esac
    [ -n "$fdb_error" ] || fdb_error="exit code $fdb_rc"
    return 1
}

# fdb_download BASE VERSION TARGET DIR: downloads BASE/SHA256SUMS and the archive of VERSION for
# TARGET into DIR (which exists and is empty), checks the archive's SHA-256 and unpacks its
# binary, alone, to DIR/faber-db. Returns 0 (fdb_sha: the archive's SHA-256); 1 when that is
# impossible (fdb_error says why); 2 when the archive does not match (fdb_error says so).
fdb_download() {
    fdb_name=faber-db-$2-$3
    fdb_shown=$(fdb_shown_url "$1")
    if ! fdb_fetch "$1/SHA256SUMS" "$4/SHA256SUMS"; then
        fdb_error="cannot download $fdb_shown/SHA256SUMS: $fdb_error"
        return 1
    fi
    fdb_want=$(awk -v f="$fdb_name.tar.gz" '$2 == f || $2 == "*" f { print tolower($1); exit }' "$4/SHA256SUMS")
    if [ -z "$fdb_want" ]; then
        fdb_error="the release has no archive for $3 ($fdb_name.tar.gz is not in $fdb_shown/SHA256SUMS)"
        return 1
    fi
    if ! fdb_fetch "$1/$fdb_name.tar.gz" "$4/$fdb_name.tar.gz"; then
        fdb_error="cannot download $fdb_shown/$fdb_name.tar.gz: $fdb_error"
        return 1
    fi
    fdb_sha=$(fdb_sha256 "$4/$fdb_name.tar.gz")
    case $fdb_sha in
    '' | *[!0-9a-f]*)
        fdb_error="cannot compute the SHA-256 of the downloaded $fdb_name.tar.gz"
        return 1
        ;;
    esac
    if [ "$fdb_sha" != "$fdb_want" ]; then
        fdb_error="$fdb_shown/$fdb_name.tar.gz does not match its SHA-256 in SHA256SUMS (expected $fdb_want, got $fdb_sha)"
        return 2
    fi
    # Only the one member's bytes, written into a file of our own: nothing else in the archive
    # is unpacked, and no link, owner or mode of the archive's is honoured (a link member has
    # no bytes, and is refused as empty).
    tar -xOzf "$4/$fdb_name.tar.gz" "$fdb_name/faber-db" >"$4/faber-db" 2>/dev/null
    if [ ! -s "$4/faber-db" ]; then
        fdb_error="$fdb_shown/$fdb_name.tar.gz holds no $fdb_name/faber-db"
        return 1
    fi
    chmod 755 "$4/faber-db"
}

[ -z "${FABER_DB_INSTALL_LIB:-}" ] || return 0

# The script itself.
set -u

fdb_fail() {
    fdb_code=$1
    printf 'error: %s\n' "$2" >&2
    [ -z "${3:-}" ] || printf 'hint: %s\n' "$3" >&2
    exit "$fdb_code"
}

fdb_version=${FABER_DB_VERSION:-$fdb_default_version}
fdb_dir=${FABER_DB_INSTALL_DIR:-}
fdb_base=${FABER_DB_RELEASE_URL:-}
while [ $# -gt 0 ]; do
    case $1 in
    --version | --dir | --url)
        [ $# -ge 2 ] || fdb_fail 1 "$1 needs a value" "see the top of this script for its options"
        case $1 in
        --version) fdb_version=$2 ;;
        --dir) fdb_dir=$2 ;;
        --url) fdb_base=$2 ;;
        esac
        shift 2
        ;;
    -h | --help)
        printf 'usage: install.sh [--version V] [--dir DIR] [--url BASE]\n'
        printf 'Installs the faber-db release binary V (default %s) into DIR (default ~/.local/bin),\n' "$fdb_default_version"
        printf 'checked against the release'"'"'s SHA256SUMS; BASE is where the release'"'"'s files are.\n'
        exit 0
        ;;
    *) fdb_fail 1 "unknown option: $1" "options: --version V, --dir DIR, --url BASE" ;;
    esac
done
fdb_version=${fdb_version#v}
case $fdb_version in
'' | *[!0-9A-Za-z.+-]*) fdb_fail 1 "not a version: \"$fdb_version\"" "give one like --version $fdb_default_version" ;;
esac
if [ -z "$fdb_dir" ]; then
    [ -n "${HOME:-}" ] || fdb_fail 1 "HOME is not set to install into ~/.local/bin" "give a directory with --dir"
    fdb_dir=$HOME/.local/bin
fi
[ -n "$fdb_base" ] || fdb_base=$fdb_repository/releases/download/v$fdb_version
fdb_checked=$(fdb_url "$fdb_base")
[ -n "$fdb_checked" ] || fdb_fail 1 "not an http(s) URL: $(fdb_shown_url "$fdb_base")" "give the directory of a release's files, like $fdb_repository/releases/download/v$fdb_version"
fdb_base=$fdb_checked
fdb_why=$(fdb_missing_tools)
[ -z "$fdb_why" ] || fdb_fail 1 "cannot download faber-db here: $fdb_why" "install it, or build faber-db from source: cargo install --locked --git $fdb_repository"
fdb_tgt=$(fdb_target)
[ -n "$fdb_tgt" ] || fdb_fail 1 "no faber-db release is built for this platform ($(uname -sm 2>/dev/null))" "build it from source: cargo install --locked --git $fdb_repository"

mkdir -p "$fdb_dir" || fdb_fail 1 "cannot create $fdb_dir" "give a directory you can write to with --dir"
fdb_tmp=$(mktemp -d "$fdb_dir/.faber-db-install.XXXXXX") ||
    fdb_fail 1 "cannot write to $fdb_dir" "give a directory you can write to with --dir"
trap 'rm -rf "$fdb_tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

printf 'Downloading faber-db %s for %s from %s\n' "$fdb_version" "$fdb_tgt" "$(fdb_shown_url "$fdb_base")" >&2
fdb_download "$fdb_base" "$fdb_version" "$fdb_tgt" "$fdb_tmp"
case $? in
0) ;;
2) fdb_fail 5 "$fdb_error; nothing was installed" "the archive was damaged or changed on the way or on the server: run this again; if it is refused again, tell whoever runs that server" ;;
*) fdb_fail 1 "$fdb_error" "check the version and the URL (--version, --url); or build it from source: cargo install --locked --git $fdb_repository" ;;
esac
fdb_said=$("$fdb_tmp/faber-db" --version 2>/dev/null </dev/null) || fdb_said=
case $fdb_said in
"faber-db $fdb_version" | "faber-db $fdb_version ("*) ;;
*) fdb_fail 1 "the downloaded binary does not run here or is not faber-db $fdb_version (it says \"$fdb_said\")" "build it from source: cargo install --locked --git $fdb_repository" ;;
esac
[ ! -d "$fdb_dir/faber-db" ] || fdb_fail 1 "$fdb_dir/faber-db is a directory" "remove it, or give another directory with --dir"
mv -f "$fdb_tmp/faber-db" "$fdb_dir/faber-db" || fdb_fail 1 "cannot install into $fdb_dir" "give a directory you can write to with --dir"
printf 'Installed %s (SHA-256 %s of the archive checked): %s\n' "$fdb_said" "$fdb_sha" "$fdb_dir/faber-db" >&2
# shellcheck disable=SC2016 # $PATH is for the user to type
case :${PATH:-}: in
*:"$fdb_dir":*) ;;
*) printf 'Note: %s is not on PATH; add it (export PATH="%s:$PATH") to run faber-db by name\n' "$fdb_dir" "$fdb_dir" >&2 ;;
esac
