#!/bin/sh
# `npm test`'s pretest: the system packages the suite drives (varnishd, chromium, …) are the ones .ci/apt-packages
# lists, one per line. All present: a no-op (one dpkg query). Missing and root: installs them, quietly. Missing and
# not root: stops at once with the exact command to run, instead of failing minutes later inside a test.
set -eu
cd "$(dirname "$0")/.."
list=.ci/apt-packages
[ -s "$list" ] || exit 0
wanted=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$' || true)
[ -n "$wanted" ] || exit 0
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "ensure-packages: no dpkg here; install these yourself if tests need them: $(echo $wanted)" >&2
  exit 0
fi
missing=""
for pkg in $wanted; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing="$missing $pkg"
done
[ -n "$missing" ] || exit 0
missing=${missing# }
command="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing"
if [ "$(id -u)" != 0 ]; then
  echo "The test suite needs system packages that are not installed: $missing" >&2
  echo "Run as root, then npm test again:" >&2
  echo "  sudo sh -c '$command'" >&2
  exit 1
fi
echo "ensure-packages: installing $missing" >&2
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
