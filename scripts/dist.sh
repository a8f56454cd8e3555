#!/usr/bin/env bash
# Builds and packages one faber-db release archive, as the release workflow
# (.github/workflows/release.yml) publishes it and the plugin's launcher downloads it:
#
#   scripts/dist.sh [--target TRIPLE] [--binary PATH] [--out DIR]
#
# --target   the target triple (default: this machine's, as rustc reports it). Linux targets
#            are built with cargo-zigbuild against glibc 2.17, so the binary runs on every
#            distribution still in support (RHEL/CentOS 7 and later); other targets with cargo.
# --binary   package this binary instead of building one (the tests package the suite's own).
# --out      where the archive goes (default: dist/).
#
# Leaves DIR/faber-db-<version>-<target>.tar.gz (a directory of that name holding faber-db,
# README.md and CHANGELOG.md), DIR/faber-db-<version>-<target>.tar.gz.sha256 (its line of
# SHA256SUMS) and DIR/SHA256SUMS (every archive in DIR, one `<sha256>  <name>` line each).
# Prints the archive's path and the binary's size in bytes.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
target=
binary=
out=dist

usage() { printf 'usage: scripts/dist.sh [--target TRIPLE] [--binary PATH] [--out DIR]\n' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --target) [ $# -ge 2 ] || usage; target=$2; shift ;;
    --binary) [ $# -ge 2 ] || usage; binary=$2; shift ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift ;;
    *) usage ;;
  esac
  shift
done

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

version=$(awk -F'"' '
  /^[[:space:]]*\[/ { inpkg = ($0 ~ /^[[:space:]]*\[package\][[:space:]]*$/) }
  inpkg && /^[[:space:]]*version[[:space:]]*=/ { print $2; exit }
' "$here/Cargo.toml")
[ -n "$version" ] || die "no [package] version in $here/Cargo.toml"
[ -n "$target" ] || target=$(rustc -vV | sed -n 's/^host: //p')
case $target in
  '' | *[!a-z0-9_.-]*) die "not a target triple: \"$target\"" ;;
esac

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

if [ -z "$binary" ]; then
  # From the repository, so that .cargo/config.toml applies (SQLite's sqlite_dbpage table).
  cd "$here"
  case $target in
    *-linux-gnu)
      command -v cargo-zigbuild >/dev/null 2>&1 ||
        die "cargo-zigbuild is needed for Linux release builds (pip install cargo-zigbuild ziglang)"
      cargo zigbuild --locked --profile dist --target "$target.2.17"
      ;;
    *) cargo build --locked --profile dist --target "$target" ;;
  esac
  binary=$here/target/$target/dist/faber-db
  case $target in
    *-linux-gnu)
      # The newest glibc symbol version it needs: 2.17 at most, or it would not run everywhere.
      newest=$(readelf --dyn-syms -W "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' |
        sort -uV | tail -n 1)
      [ "$(printf '%s\n2.17\n' "$newest" | sort -V | tail -n 1)" = 2.17 ] ||
        die "the binary needs glibc $newest, newer than the 2.17 it is built for"
      printf 'glibc needed: %s\n' "${newest:-none}" >&2
      ;;
  esac
fi
[ -f "$binary" ] && [ -x "$binary" ] || die "no executable binary at $binary"

name=faber-db-$version-$target
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d "$out/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
cp "$binary" "$stage/$name/faber-db"
chmod 755 "$stage/$name/faber-db"
cp "$here/README.md" "$here/CHANGELOG.md" "$stage/$name/"
# COPYFILE_DISABLE: no AppleDouble `._*` entries from macOS's tar.
COPYFILE_DISABLE=1 tar -C "$stage" -czf "$stage/$name.tar.gz" "$name"
mv -f "$stage/$name.tar.gz" "$out/$name.tar.gz"
printf '%s  %s\n' "$(sha256_of "$out/$name.tar.gz")" "$name.tar.gz" > "$out/$name.tar.gz.sha256"
cat "$out"/*.tar.gz.sha256 > "$stage/SHA256SUMS"
mv -f "$stage/SHA256SUMS" "$out/SHA256SUMS"

printf '%s\n' "$out/$name.tar.gz"
printf 'faber-db binary: %s bytes\n' "$(wc -c < "$stage/$name/faber-db" | tr -d ' ')"
