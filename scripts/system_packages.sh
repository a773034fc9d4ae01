#!/usr/bin/env bash
# Makes sure the Debian packages named as arguments are installed, so that the README's two
# commands work on a fresh machine with nothing installed by hand.
#   root:      installs what is missing with apt-get;
#   otherwise: prints the one command that installs it and fails.
set -euo pipefail

[ $# -gt 0 ] || exit 0
if ! command -v dpkg >/dev/null 2>&1; then
  echo "not a Debian/Ubuntu system: make sure these are installed: $*" >&2
  exit 0
fi

missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "installing system packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "missing system packages: ${missing[*]}" >&2
echo "install them with:  sudo apt-get install -y ${missing[*]}" >&2
exit 1
