#!/usr/bin/env bash
# chaos: runs real jobs on a manager (with --verify) and six workers while
# killing (SIGKILL), freezing (SIGSTOP, then SIGCONT) and restarting (SIGTERM)
# random workers, beside a worker that corrupts every result and one that
# refuses some units, and checks that every job's output is byte-identical to
# a fault-free run.
#
#   tests/chaos/chaos.sh [--seconds N] [--build DIR]
#
# Worker 0 is never touched, so that every job can finish; workers 1-3 get
# the faults; worker 4 lies (corrupt:all) and worker 5 refuses units 5, 50
# and 100. Exit 0 when every output matched.
set -u
seconds=20
build=${HYADES_BUILD:-build}
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --build) build=$2; shift 2 ;;
        *) echo "usage: $0 [--seconds N] [--build DIR]" >&2; exit 2 ;;
    esac
done
manager=$build/hyades-manager
worker=$build/hyades-worker
dir=$(mktemp -d /tmp/hyades-chaos-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
    [ -n "${mpid:-}" ] && kill -KILL "$mpid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

job=(mandelbrot --width 400 --height 300 --max-iter 60000)
slow=sleep:2   # each unit takes 2 ms more, so that a job lasts long enough for faults
"$manager" --quiet --local 2 "${job[@]}" -o "$dir/reference.png" || { echo "chaos: fault-free run failed"; exit 1; }

# Every manager listens on the same private ipc endpoint in our directory.
endpoint=ipc://$dir/manager.ipc
start_manager() {
    : > "$dir/manager.log"
    "$manager" --bind "$endpoint" --min-workers 2 --heartbeat 100 --max-attempts 100 --verify --json "$dir/run.json" \
        "${job[@]}" -o "$dir/out.png" > /dev/null 2>> "$dir/manager.log" &
    mpid=$!
    for _ in $(seq 200); do
        grep -q 'listening on' "$dir/manager.log" && return 0
        sleep 0.02
    done
    echo "chaos: the manager did not start"; cat "$dir/manager.log"; exit 1
}
start_worker() {
    HYADES_FAILPOINTS=$slow${2:+,$2} "$worker" --connect "$endpoint" --threads 1 --name "w$1" --heartbeat 100 --quiet \
        2>> "$dir/workers.log" &
    pids[$1]=$!
}

start_manager
for i in 0 1 2 3; do start_worker "$i"; done
start_worker 4 corrupt:all
start_worker 5 refuse:5,refuse:50,refuse:100
end=$((SECONDS + seconds))
rounds=0 kills=0 freezes=0 restarts=0
while :; do
    # Faults while the job runs.
    while kill -0 "$mpid" 2>/dev/null; do
        sleep "0.$((RANDOM % 4 + 1))"
        victim=$((RANDOM % 3 + 1))
        case $((RANDOM % 3)) in
            0) kill -KILL "${pids[$victim]}" 2>/dev/null; wait "${pids[$victim]}" 2>/dev/null
               start_worker "$victim"; kills=$((kills + 1)) ;;
            1) kill -STOP "${pids[$victim]}" 2>/dev/null; sleep "0.$((RANDOM % 8 + 2))"
               kill -CONT "${pids[$victim]}" 2>/dev/null; freezes=$((freezes + 1)) ;;
            2) kill -TERM "${pids[$victim]}" 2>/dev/null; wait "${pids[$victim]}" 2>/dev/null
               start_worker "$victim"; restarts=$((restarts + 1)) ;;
        esac
    done
    wait "$mpid"; rc=$?
    rounds=$((rounds + 1))
    if [ "$rc" -ne 0 ] || ! cmp -s "$dir/out.png" "$dir/reference.png"; then
        echo "chaos: round $rounds FAILED (manager exit $rc, output differs or missing)"
        tail -20 "$dir/manager.log"
        exit 1
    fi
    reissued=$(grep -o '"reissued":[0-9]*' "$dir/run.json" | cut -d: -f2)
    mismatches=$(grep -o '"mismatches":[0-9]*' "$dir/run.json" | cut -d: -f2)
    echo "chaos: round $rounds identical (re-issued $reissued units, $mismatches mismatches caught)"
    [ "$SECONDS" -ge "$end" ] && break
    rm -f "$dir/out.png"
    start_manager
done
echo "chaos: $rounds rounds in ${seconds}s, $kills kills, $freezes freezes, $restarts restarts: every output identical"
