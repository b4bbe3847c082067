# Sourced by `npm start` (POSIX sh, before `exec node`): the allocator imgrelay runs under. Measurements and reasons:
# docs/memory.md ("Memory that comes back"). Anything the operator already set wins.
#
# jemalloc when the system has it (Debian/Ubuntu: apt-get install libjemalloc2), tuned to hand freed pages back
# within a second; sharp recommends it on glibc. Without it, glibc with fixed trim and mmap thresholds: buffers of
# 128 KiB and more get their own mappings, returned to the system when freed, instead of glibc's default of raising
# the threshold after each large free (which moves decoded images into arenas that fragment and never shrink).
if [ -z "${LD_PRELOAD:-}" ]; then
  for lib in /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 \
    /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2; do
    if [ -r "$lib" ]; then
      export LD_PRELOAD="$lib"
      export MALLOC_CONF="${MALLOC_CONF:-background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2}"
      break
    fi
  done
fi
export MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-131072}"
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-131072}"
