#!/bin/sh
# Run by `npm start` (and the test suite's global setup): compiles src/ to dist/node when it must and can.
# Must: dist/node/node.js is missing, or a source or tsconfig file is newer than the last build.
# Can: this is a checkout with src/ and TypeScript installed (devDependencies). A production install (dist/ copied
# in, `npm ci --omit=dev`) has neither: dist runs as it is. No dist and no compiler: stop with what to do.
set -eu
cd "$(dirname "$0")/.."
stamp=dist/node/.tsbuildinfo
tsc=node_modules/typescript/bin/tsc
stale=no
if [ ! -f dist/node/node.js ]; then
  stale=yes
elif [ -d src ] && { [ ! -f "$stamp" ] || [ -n "$(find src tsconfig.json tsconfig.build.json -newer "$stamp" -print 2>/dev/null | head -n 1)" ]; }; then
  stale=yes # no src/ (a production install): dist/ is what there is, whatever its age
fi
[ "$stale" = yes ] || exit 0
if [ -d src ] && [ -f "$tsc" ]; then
  # tsc's incremental state says nothing changed when only outputs were deleted, and would emit nothing.
  [ -f dist/node/node.js ] || rm -f "$stamp"
  node "$tsc" -p tsconfig.build.json
  touch "$stamp" # tsc leaves it alone when nothing changed; the mark says "checked against these sources"
elif [ -f dist/node/node.js ]; then
  echo "imgrelay: src/ changed since dist/ was built, but TypeScript is not installed; running dist/ as it is" >&2
else
  echo "imgrelay: dist/node/node.js is missing. Build it with 'npm run build' (needs devDependencies: npm ci)," >&2
  echo "or copy a dist/ built elsewhere (README, \"Production install\")." >&2
  exit 1
fi
