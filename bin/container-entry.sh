#!/bin/sh
# The container's entry (Containerfile ENTRYPOINT): the compiled service, started the way `npm start` starts it but
# without npm in between (npm would sit as PID 1's child and swallow SIGTERM) and without a build step (the image
# holds no compiler). `exec` makes node the process that receives SIGTERM and drains.
set -e
cd "$(dirname "$0")/.."
. ./bin/malloc-env.sh
. ./bin/threadpool-env.sh
# Two glibc arenas, as `npm start` sets (docs/memory.md); an operator's own value wins.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec node dist/node/node.js "$@"
