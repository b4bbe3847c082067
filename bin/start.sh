#!/bin/sh
# The service's one start: `npm start` runs it (after bin/build-if-stale.sh) and so does the container's ENTRYPOINT
# (the image holds no compiler, so no build step there). The allocator (bin/malloc-env.sh) and libuv pool
# (bin/threadpool-env.sh) settings, two glibc arenas (docs/memory.md), then `exec`: node itself is the process that
# receives SIGTERM and drains, with no shell (nor, in the container, npm) in between to swallow it.
# Anything the operator already set wins.
set -e
cd "$(dirname "$0")/.."
. ./bin/malloc-env.sh
. ./bin/threadpool-env.sh
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec node dist/node/node.js "$@"
