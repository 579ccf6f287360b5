#!/bin/bash
# The full benchmark matrix on Debian's own builds: 3.11 on a Debian 12 host, 3.13 and 3.14
# from a Debian sid chroot; granian and uvicorn; kit and its peers; one shared Postgres on
# 127.0.0.1:$PG_PORT that kit bench pins to the load CPU (the chroot shares the host's network).
# Each Python waits for a quiet machine (1-minute load average below LOAD_MAX) first, then
# `kit bench --out` writes its results; `kit bench --merge` joins them at the end.
#
# Set up once (as root):
#   python3.11 -m venv $HOST_VENV && $HOST_VENV/bin/pip install -e "$MAIN[embedded,granian,uvicorn,bench]"
#   debootstrap --variant=minbase --include=ca-certificates sid $SID
#   cp /etc/ssl/certs/ca-certificates.crt $SID/etc/ssl/certs/
#   chroot $SID apt-get -o Acquire::Check-Valid-Until=false update
#   chroot $SID apt-get install -y python3.13 python3.13-venv python3.13-dev python3.14 \
#       python3.14-venv python3.14-dev gcc g++ make wrk procps util-linux libffi-dev
#   then, inside the chroot with $MAIN bind-mounted at the same path, for V in 3.13 3.14:
#   python$V -m venv /opt/venv-$V && /opt/venv-$V/bin/pip install -e "$MAIN[embedded,granian,uvicorn,bench]"
#
#   bench/debian_matrix.sh                      # the full matrix
#   FRAMEWORKS=kit ENDPOINTS=json DURATION=1 LOAD_MAX=99 bench/debian_matrix.sh   # a smoke run
#
# Every setting below can be overridden from the environment.
set -u -o pipefail

FRAMEWORKS=${FRAMEWORKS:-kit,blacksheep,litestar,starlette,fastapi,raw}
RUNTIMES=${RUNTIMES:-granian,uvicorn}
ENDPOINTS=${ENDPOINTS:-json,plaintext,validate,db,fortunes,item,search,account,item_404,order}
DURATION=${DURATION:-4}
WARMUP=${WARMUP:-1}
PYTHONS=${PYTHONS:-3.11,3.13,3.14}
LOAD_MAX=${LOAD_MAX:-0.5}      # start a Python only below this 1-minute load average
WAIT_MAX=${WAIT_MAX:-7200}     # give up (exit 3) after waiting this many seconds for it
OUT=${OUT:-$MAIN/bench/results/matrix-$(date -u +%Y%m%dT%H%MZ)}

MAIN=${MAIN:-$(cd "$(dirname "$0")/.." && pwd)}
SID=${SID:-/srv/kit-sid}
HOST_VENV=${HOST_VENV:-$MAIN/.venv-debian}
PGDATA_DIR=${PGDATA_DIR:-$MAIN/.kit/matrix-pgdata}
PG_PORT=${PG_PORT:-55432}
export DATABASE_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/kit-matrix-xdg}  # 0700: no platformdirs warning
mkdir -p -m 700 "$XDG_RUNTIME_DIR"

mkdir -p "$OUT"
LOG=$OUT/run.log
exec > >(tee -a "$LOG") 2>&1

say() { echo "[$(date -u +%H:%M:%SZ)] $*"; }

mount_chroot() {
    local dir
    for dir in proc sys dev dev/pts; do
        mountpoint -q "$SID/$dir" || mount --bind "/$dir" "$SID/$dir" || return 1
    done
    for dir in "$MAIN" "$OUT" "$XDG_RUNTIME_DIR"; do
        mkdir -p "$SID$dir"
        mountpoint -q "$SID$dir" || mount --bind "$dir" "$SID$dir" || return 1
    done
}

wait_quiet() {
    local waited=0 load
    while :; do
        load=$(cut -d' ' -f1 /proc/loadavg)
        if awk -v l="$load" -v m="$LOAD_MAX" 'BEGIN { exit !(l < m) }'; then
            say "load average $load < $LOAD_MAX after ${waited}s of waiting"
            return 0
        fi
        if [ "$waited" -ge "$WAIT_MAX" ]; then
            say "load average still $load after ${WAIT_MAX}s; giving up"
            return 1
        fi
        sleep 15
        waited=$((waited + 15))
    done
}

bench_args=(--frameworks "$FRAMEWORKS" --runtimes "$RUNTIMES" --endpoints "$ENDPOINTS"
    --duration "$DURATION" --warmup "$WARMUP" --out "$OUT")

run_python() {  # one Python's kit bench; its exit code
    local version=$1
    if [ "$version" = 3.11 ]; then
        (cd "$MAIN" && "$HOST_VENV/bin/kit" bench "${bench_args[@]}")
    else
        chroot "$SID" env -i PATH="/opt/venv-$version/bin:/usr/bin:/bin" HOME=/root \
            LANG=C.UTF-8 XDG_RUNTIME_DIR="$XDG_RUNTIME_DIR" DATABASE_URL="$DATABASE_URL" \
            MAIN="$MAIN" sh -c 'cd "$MAIN" && exec kit bench "$@"' kit-bench "${bench_args[@]}"
    fi
}

say "matrix into $OUT"
say "main at $(git -C "$MAIN" rev-parse --short HEAD) ($(git -C "$MAIN" log -1 --format=%s | cut -c1-80))"
if [ -n "$(git -C "$MAIN" status --porcelain --untracked-files=no)" ]; then
    say "WARNING: $MAIN has uncommitted changes; the run measures them"
fi
say "kit bench ${bench_args[*]}"
mount_chroot || { say "could not mount the chroot's directories"; exit 1; }
(cd /tmp && "$HOST_VENV/bin/python" -c "
import sys
from pathlib import Path
from kit.db.embedded import Cluster
Cluster(Path(sys.argv[1]), port=int(sys.argv[2]), host='127.0.0.1').start()
" "$PGDATA_DIR" "$PG_PORT") || { say "Postgres did not start"; exit 1; }

status=0
IFS=, read -r -a versions <<< "$PYTHONS"
for version in "${versions[@]}"; do
    wait_quiet || exit 3
    say "Python $version: start"
    run_python "$version"
    code=$?
    say "Python $version: kit bench exited $code"
    [ "$code" -gt "$status" ] && status=$code
    [ "$code" -eq 130 ] && exit 130
done

mapfile -t results < <(ls "$OUT"/*-py3.1[0-9].json 2>/dev/null)
if [ "${#results[@]}" -gt 1 ]; then
    (cd "$MAIN" && "$HOST_VENV/bin/kit" bench --merge "${results[@]}" --out "$OUT") || status=1
fi
say "done (exit $status); results in $OUT"
exit "$status"
