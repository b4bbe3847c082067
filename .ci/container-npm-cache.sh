#!/usr/bin/env bash
# Fills the host's npm cache with every package of package-lock.json, for the container build's offline `npm ci`
# (test/container: the build has no route to the registry). `npm ci` on a fresh machine fills it as well; this is for
# a machine whose node_modules came from elsewhere. Packages already cached are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2046
npm cache add --prefer-offline --no-audit --no-fund $(node -e '
  const lock = require("./package-lock.json");
  const specs = new Set();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path || entry.link || !entry.version) continue;
    specs.add(`${entry.name ?? path.slice(path.lastIndexOf("node_modules/") + 13)}@${entry.version}`);
  }
  console.log([...specs].join(" "));
')
