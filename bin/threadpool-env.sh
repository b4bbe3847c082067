# Sourced by `npm start` (POSIX sh, before `exec node`): libuv's thread pool sized to fit the transforms plus file I/O.
# Each running transform holds one pool thread for its whole length, so the default 4 would let WORKERS transforms
# starve the fs store's reads and its write-behind workers: WORKERS + 4. WORKERS unset or 0 means one per CPU (as
# in the service itself), so 0 must not become 0 + 4. Anything the operator already set wins.
if [ -z "${UV_THREADPOOL_SIZE:-}" ]; then
  imgrelay_workers="${IMGRELAY_WORKERS:-0}"
  case "$imgrelay_workers" in
    '' | *[!0-9]*) imgrelay_workers=0 ;; # not a number: the service refuses it at start-up with the other errors
  esac
  if [ "$imgrelay_workers" -eq 0 ]; then imgrelay_workers="$(nproc)"; fi
  export UV_THREADPOOL_SIZE="$((imgrelay_workers + 4))"
  unset imgrelay_workers
fi
