# Sourced by `npm start` (POSIX sh, before `exec node`): the allocator settings imgrelay runs under. Measurements and
# reasons: docs/memory.md ("Memory that comes back"). Anything the operator already set wins.
#
# glibc with fixed trim and mmap thresholds: buffers of 128 KiB and more get their own mappings, returned to the
# system when freed, instead of glibc's default of raising the threshold after each large free (which moves decoded
# images into arenas that fragment and never shrink). Measured against tuned jemalloc on the same 150 s soak with a
# full 256 MiB tier: peak RSS 466 vs 549 MiB, so jemalloc is not preloaded; it returned more after a hostile burst
# (idle 119 vs 154 MiB), and an operator who prefers that can preload it (docs/memory.md says how).
export MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-131072}"
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-131072}"
