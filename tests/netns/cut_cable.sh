#!/usr/bin/env bash
# cut_cable: three hosts on one machine (network namespaces joined by veth
# pairs): a manager and two workers, each with its own address, over CURVE.
# Mid-job one worker's link goes down for longer than the liveness timeout,
# then comes back. The job must complete with the bytes of a fault-free run,
# the cut-off worker's units re-issued, and the worker back on the roster.
#
#   tests/netns/cut_cable.sh [--build DIR]      exit 0 pass, 1 fail, 77 skipped
set -u
build=${HYADES_BUILD:-build}
[ "${1:-}" = --build ] && build=$2
manager=$(realpath "$build/hyades-manager")
worker=$(realpath "$build/hyades-worker")
tag=hy$$
m=$tag-m w1=$tag-1 w2=$tag-2
dir=$(mktemp -d /tmp/hyades-netns-XXXXXX)

cleanup() {
    for ns in $m $w1 $w2; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$dir"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ] || ! ip netns add "$m" 2>/dev/null; then
    echo "cut_cable: skipped: cannot create network namespaces here (needs root and iproute2)"
    exit 77
fi
ip netns add "$w1" && ip netns add "$w2" || exit 1
# manager 10.201.1.1 <-> worker 1 10.201.1.2; manager 10.201.2.1 <-> worker 2 10.201.2.2
ip link add m1 netns "$m" type veth peer name eth0 netns "$w1" || exit 1
ip link add m2 netns "$m" type veth peer name eth0 netns "$w2" || exit 1
ip -n "$m" addr add 10.201.1.1/24 dev m1
ip -n "$m" addr add 10.201.2.1/24 dev m2
ip -n "$w1" addr add 10.201.1.2/24 dev eth0
ip -n "$w2" addr add 10.201.2.2/24 dev eth0
for ns in $m $w1 $w2; do ip -n "$ns" link set lo up; done
ip -n "$m" link set m1 up && ip -n "$m" link set m2 up
ip -n "$w1" link set eth0 up && ip -n "$w2" link set eth0 up

mkdir -p "$dir/allowed"
"$manager" keygen "$dir/manager.cert" >/dev/null
"$worker" keygen "$dir/allowed/w1.cert" >/dev/null
"$worker" keygen "$dir/allowed/w2.cert" >/dev/null

job=(mandelbrot --width 400 --height 300 --max-iter 250000)
"$manager" --quiet --local 2 "${job[@]}" -o "$dir/reference.png" >/dev/null || { echo "cut_cable: fault-free run failed"; exit 1; }

ip netns exec "$m" "$manager" --bind tcp://0.0.0.0:5555 --cert "$dir/manager.cert" --allow "$dir/allowed" \
    --local 0 --min-workers 2 --heartbeat 200 --json "$dir/run.json" "${job[@]}" -o "$dir/out.png" \
    > /dev/null 2> "$dir/manager.log" &
mpid=$!
for i in 1 2; do
    ns=$m; [ $i = 1 ] && ns=$w1; [ $i = 2 ] && ns=$w2
    ip netns exec "$ns" env HYADES_FAILPOINTS=sleep:10 "$worker" --connect tcp://10.201.$i.1:5555 --cert "$dir/allowed/w$i.cert" \
        --manager-key "$dir/manager.cert" --threads 1 --name "w$i" --heartbeat 200 2>> "$dir/workers.log" &
done
for _ in $(seq 500); do grep -q "job mandelbrot started" "$dir/manager.log" && break; sleep 0.02; done
grep -q "job mandelbrot started" "$dir/manager.log" || { echo "cut_cable: the job did not start"; cat "$dir/manager.log"; exit 1; }
sleep 0.5
ip -n "$w1" link set eth0 down      # the cable is pulled ...
sleep 2                             # ... for more than liveness (3 x 200 ms) ...
ip -n "$w1" link set eth0 up        # ... and plugged back in
wait "$mpid"; rc=$?

fail=0
[ "$rc" -eq 0 ] || { echo "cut_cable: the manager failed (exit $rc)"; fail=1; }
cmp -s "$dir/out.png" "$dir/reference.png" || { echo "cut_cable: the output differs from the fault-free run"; fail=1; }
grep -q "worker w1 lost" "$dir/manager.log" || { echo "cut_cable: w1 was never declared lost"; fail=1; }
[ "$(grep -c 'worker w1 joined' "$dir/manager.log")" -ge 2 ] || { echo "cut_cable: w1 did not rejoin"; fail=1; }
reissued=$(grep -o '"reissued":[0-9]*' "$dir/run.json" 2>/dev/null | cut -d: -f2)
[ "${reissued:-0}" -ge 1 ] || { echo "cut_cable: no unit was re-issued"; fail=1; }
if [ $fail -ne 0 ]; then
    cat "$dir/manager.log"
    exit 1
fi
echo "cut_cable: passed: w1 cut off for 2 s, lost, $reissued units re-issued, rejoined; output identical"
