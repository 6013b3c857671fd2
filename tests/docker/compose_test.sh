#!/usr/bin/env bash
# compose_test: builds the image, runs a job on the docker-compose cluster (a
# manager and three workers), compares its output with a local run byte for
# byte, and tears everything down. Exit 0 pass, 1 fail, 77 no Docker engine.
set -u
cd "$(dirname "$0")/../.."
docker=/usr/bin/docker
if ! [ -x "$docker" ] || ! "$docker" info >/dev/null 2>&1 || ! command -v docker-compose >/dev/null; then
    echo "docker-test: skipped: no Docker engine (and docker-compose) runs on this machine"
    exit 77
fi
build=${HYADES_BUILD:-build}
project=hyadestest$$
out=$(mktemp -d /tmp/hyades-docker-XXXXXX)
chmod 777 "$out"
export HYADES_IMAGE=hyades:test HYADES_OUT=$out HYADES_MIN_WORKERS=3
export HYADES_JOB="mandelbrot --width 640 --height 480 --max-iter 2000 -o /data/compose.png"
compose=(docker-compose -p "$project" -f deploy/docker-compose.yml)
cleanup() {
    "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1
    rm -rf "$out"
}
trap cleanup EXIT

"$docker" build -q -f deploy/Dockerfile -t hyades:test . >/dev/null || { echo "docker-test: image build failed"; exit 1; }
env -u HYADES_MIN_WORKERS -u HYADES_JOB "$build/hyades-manager" --quiet --local 2 mandelbrot --width 640 --height 480 --max-iter 2000 \
    -o "$out/local.png" >/dev/null || { echo "docker-test: local run failed"; exit 1; }
timeout 300 "${compose[@]}" up --no-build --scale worker=3 --exit-code-from manager > "$out/compose.log" 2>&1
rc=$?
if [ $rc -ne 0 ] || ! cmp -s "$out/compose.png" "$out/local.png"; then
    echo "docker-test: FAILED (compose exit $rc; output missing or different)"
    tail -30 "$out/compose.log"
    exit 1
fi
workers=$(grep -o '"name":"[^"]*"' "$out/summary.json" | sort -u | wc -l)
if [ "$workers" -lt 3 ]; then
    echo "docker-test: FAILED: only $workers workers took part"; cat "$out/summary.json"; exit 1
fi
echo "docker-test: passed: manager + 3 workers in containers wrote the same bytes as a local run"
