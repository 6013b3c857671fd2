#!/usr/bin/env bash
# swarm_test: builds the image, deploys deploy/stack.yml on a one-node Docker
# Swarm (a manager task and three worker tasks), checks that the manager task
# completed with exit 0 and wrote the same bytes as a local run, and that the
# workers ended on their own (--exit-when-done); then removes the stack, and
# the swarm if the test made it. Exit 0 pass, 1 fail, 77 no Docker engine.
set -u
cd "$(dirname "$0")/../.."
docker=/usr/bin/docker
if ! [ -x "$docker" ] || ! "$docker" info >/dev/null 2>&1; then
    echo "swarm-test: skipped: no Docker engine runs on this machine"
    exit 77
fi
state=$("$docker" info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.Nodes}}')
case $state in
    inactive*) ;;
    "active true 1") ;;
    active\ true*) echo "swarm-test: skipped: this node is in a swarm of ${state##* } nodes (the image and output are local)"; exit 77 ;;
    *) echo "swarm-test: skipped: this node's swarm cannot deploy a stack here ($state)"; exit 77 ;;
esac
stack=hyadestest$$
out=$(mktemp -d /tmp/hyades-swarm-XXXXXX)
chmod 777 "$out"
made_swarm= made_gwbridge=
export HYADES_IMAGE=hyades:test HYADES_OUT=$out HYADES_WORKERS=3
job=(mandelbrot --width 320 --height 240 --max-iter 2000)
export HYADES_JOB="${job[*]} -o /data/swarm.png"
# Task containers and the stack's network go some seconds after `stack rm`;
# a swarm left before then can leave them behind.
cleanup() {
    "$docker" stack rm "$stack" >/dev/null 2>&1
    for _ in $(seq 60); do
        [ -z "$("$docker" ps -aq --filter "label=com.docker.stack.namespace=$stack")" ] \
            && [ -z "$("$docker" network ls -q --filter "label=com.docker.stack.namespace=$stack")" ] && break
        sleep 1
    done
    if [ -n "$made_swarm" ]; then
        "$docker" swarm leave --force >/dev/null 2>&1
        [ -n "$made_gwbridge" ] && "$docker" network rm docker_gwbridge >/dev/null 2>&1
    fi
    rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
fail() {
    echo "swarm-test: FAILED: $*"
    "$docker" service ps --no-trunc "${stack}_manager" "${stack}_worker" 2>&1 | head -20
    "$docker" service logs --raw "${stack}_manager" 2>&1 | tail -20
    exit 1
}
# "STATE EXITCODE" of a task ("" while it has no container yet).
task_state() {
    "$docker" inspect --format '{{.Status.State}} {{with .Status.ContainerStatus}}{{.ExitCode}}{{end}}' "$1" 2>/dev/null
}

"$docker" build -q -f deploy/Dockerfile -t hyades:test . >/dev/null || { echo "swarm-test: image build failed"; exit 1; }
"$docker" run --rm -v "$out:/data" hyades:test hyades-manager --quiet --local 2 "${job[@]}" -o /data/local.png >/dev/null \
    || { echo "swarm-test: local run failed"; exit 1; }
if [ "${state%% *}" = inactive ]; then
    "$docker" network inspect docker_gwbridge >/dev/null 2>&1 || made_gwbridge=1
    "$docker" swarm init --advertise-addr 127.0.0.1 >/dev/null 2>&1 || { echo "swarm-test: skipped: docker swarm init failed"; exit 77; }
    made_swarm=1
fi
timeout 60 "$docker" stack deploy -c deploy/stack.yml "$stack" >"$out/deploy.log" 2>&1 || { cat "$out/deploy.log"; fail "stack deploy"; }

# The manager task runs once (restart condition none): wait until it ends.
manager=
for _ in $(seq 120); do
    [ -n "$manager" ] || manager=$("$docker" service ps -q --no-trunc "${stack}_manager" 2>/dev/null | head -n 1)
    if [ -n "$manager" ]; then
        case $(task_state "$manager") in complete*|failed*|rejected*|shutdown*|orphaned*) break ;; esac
    fi
    sleep 1
done
[ -n "$manager" ] || fail "no manager task after 120 s"
read -r mstate mcode <<<"$(task_state "$manager")"
case $mstate in
    complete) [ "$mcode" = 0 ] || fail "manager task complete with exit $mcode" ;;
    failed|rejected|shutdown|orphaned) fail "manager task $mstate (exit ${mcode:-none})" ;;
    *) fail "manager task still ${mstate:-unknown} after 120 s" ;;
esac
cmp -s "$out/swarm.png" "$out/local.png" || fail "output missing or different from the local run"

# Workers leave by themselves when the manager says it is finished: three
# tasks (none restarted), each complete with exit 0, none stopped by Swarm.
for _ in $(seq 30); do
    states=$(for t in $("$docker" service ps -q --no-trunc "${stack}_worker"); do task_state "$t"; done)
    grep -Eq '^(new|pending|assigned|accepted|preparing|ready|starting|running)' <<<"$states" || break
    sleep 1
done
ended=$(grep -c '^complete 0$' <<<"$states")
if [ "$ended" -ne 3 ] || [ "$(grep -c . <<<"$states")" -ne 3 ]; then
    fail "worker tasks did not all end on their own with exit 0: $(tr '\n' ',' <<<"$states")"
fi
workers=$(grep -o '"name":"[^"]*"' "$out/summary.json" | sort -u | wc -l)
[ "$workers" -ge 3 ] || fail "only $workers workers took part: $(cat "$out/summary.json")"
echo "swarm-test: passed: a manager task + 3 worker tasks on a Swarm wrote the same bytes as a local run and ended by themselves"
