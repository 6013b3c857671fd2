#!/usr/bin/env bash
# slurm_test: runs deploy/slurm/hyades.sbatch on a one-node Slurm cluster made
# here, in a temporary directory, without systemd: a private munged, then
# slurmctld and slurmd on non-default ports, all as root on this host. Checks
# that a job without keys (HYADES_INSECURE=1) and one with CURVE keys
# (HYADES_KEYS) write the same bytes as a local run and exit 0, and that a job
# with a bad option, or without keys or HYADES_INSECURE, fails. Every daemon is
# stopped on every exit path (munged last) and the directory removed.
# Installs Slurm with apt-get if missing. Exit 0 pass, 1 fail, 77 skipped.
# Env: HYADES_BUILD (default: the build directory beside this checkout).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${HYADES_BUILD:-$root/build}" 2>/dev/null && pwd) || { echo "slurm-test: FAILED: no build directory"; exit 1; }
script=$root/deploy/slurm/hyades.sbatch
job=(mandelbrot --width 320 --height 240 --max-iter 500)

say() { echo "slurm-test: $*"; }
skip() { say "skipped: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (it runs its own slurmctld, slurmd and munged)"
for f in hyades-manager hyades-worker; do
    [ -x "$build/$f" ] || { say "FAILED: no $build/$f"; exit 1; }
done
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || skip "Slurm is not installed and there is no apt-get"
    say "installing slurmctld slurmd slurm-client munge" >&2
    apt=$( { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge; } 2>&1 ) \
        || skip "apt-get could not install Slurm: $(printf '%s\n' "$apt" | grep -v '^ *$' | tail -1)"
fi

# Nothing of the caller's hyades or Slurm settings leaks into the jobs.
unset $(compgen -e | grep -E '^(HYADES_|SLURM_|SBATCH_|SRUN_|SQUEUE_|SINFO_)')
tmp=$(mktemp -d /tmp/hyades-slurm-XXXXXX)
chmod 711 "$tmp"   # munged wants its socket's directories reachable by all
# Every process started from here on carries this mark in its environment
# (slurmstepd, which starts with an empty one, keeps slurmd's log open):
# cleanup finds whatever outlived its stop.
export HYADES_SLURM_TEST_MARK=$tmp
pids=()   # munged slurmctld slurmd: stopped in the reverse order

ours() {   # pids of the processes above (bash builtins only: no new process)
    local p e fd
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = $$ ] && continue
        while IFS= read -r -d '' e; do
            [ "$e" = "HYADES_SLURM_TEST_MARK=$tmp" ] && { echo "${p#/proc/}"; continue 2; }
        done 2>/dev/null <"$p/environ"
        for fd in "$p"/fd/*; do
            [ "$fd" -ef "$tmp/log/slurmd.log" ] && { echo "${p#/proc/}"; continue 2; }
        done 2>/dev/null
    done
}
stop() {   # stop PID: SIGTERM, then SIGKILL after 10 s
    local i
    kill "$1" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
cleanup() {
    local rc=$? i left
    trap - EXIT INT TERM HUP
    if [ ${#pids[@]} -ge 2 ]; then   # slurmctld was started: cancel any job left, let it end
        scancel $(squeue -h -o %i 2>/dev/null) 2>/dev/null
        for ((i = 0; i < 100; i++)); do left=$(squeue -h 2>/dev/null) && [ -n "$left" ] || break; sleep 0.1; done
    fi
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[i]}"; done
    for ((i = 0; i < 50; i++)); do left=$(ours); [ -z "$left" ] && break; sleep 0.1; done
    if [ -n "$left" ]; then
        ps -o pid,args -p $left | sed 's/^/  /'
        kill -9 $left 2>/dev/null
        [ $rc -eq 0 ] && { say "FAILED: processes were left behind (killed)"; rc=1; }
    fi
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT
trap 'say "FAILED: interrupted"; exit 1' INT TERM HUP
fail() {
    for log in "$tmp"/log/*; do [ -s "$log" ] && { echo "--- $log"; tail -15 "$log"; }; done
    say "FAILED: $*"
    exit 1
}
free_ports() {   # free_ports N: N distinct TCP ports nothing listens on
    # Below the kernel's range for outgoing connections: one of Slurm's own
    # could otherwise take the port between this check and the bind.
    local p ports=" " low
    low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    [[ $low =~ ^[0-9]+$ ]] && ((low > 12000)) || low=32768
    while [ $(wc -w <<<"$ports") -lt "$1" ]; do
        p=$((10000 + RANDOM % (low - 10000)))
        [[ $ports == *" $p "* ]] || (: </dev/tcp/127.0.0.1/$p) 2>/dev/null || ports+="$p "
    done
    echo $ports
}

mkdir -m 755 "$tmp/munge"
mkdir "$tmp/state" "$tmp/spool" "$tmp/log" "$tmp/run"
node=$(hostname -s)

# munged, private: its own key and socket.
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 2>/dev/null && chmod 600 "$tmp/munge/munge.key"
socket=$tmp/munge/munge.socket
munged -F --socket="$socket" --key-file="$tmp/munge/munge.key" --pid-file="$tmp/munge/munged.pid" \
    --log-file="$tmp/log/munged.log" --seed-file="$tmp/munge/munged.seed" 2>"$tmp/log/munged.log" &
pids+=($!)
for ((i = 0; i < 50; i++)); do [ -S "$socket" ] && break; sleep 0.1; done
munge -n -S "$socket" | unmunge -S "$socket" >/dev/null 2>&1 || fail "munged does not answer on $socket"

# slurm.conf: this node as slurmd -C describes it, on loopback and free ports.
read -r ctld_port slurmd_port hyades_port <<<"$(free_ports 3)"
nodeline=$(slurmd -C | head -1 | sed 's/ RealMemory=[0-9]*//')
case "$nodeline" in "NodeName=$node "*) ;; *) fail "slurmd -C says '$nodeline', not NodeName=$node" ;; esac
export SLURM_CONF=$tmp/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=hyadestest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
PlugStackConfig=$tmp/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
KillWait=5
MinJobAge=5
$nodeline NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
: >"$tmp/plugstack.conf"

slurmctld -D -f "$SLURM_CONF" >>"$tmp/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >>"$tmp/log/slurmd.out" 2>&1 &
pids+=($!)
for ((i = 0; i < 300; i++)); do
    [ "$(sinfo -h -n "$node" -o %t 2>/dev/null)" = idle ] && break
    kill -0 "${pids[1]}" 2>/dev/null && kill -0 "${pids[2]}" 2>/dev/null || fail "slurmctld or slurmd exited"
    sleep 0.1
done
[ "$(sinfo -h -n "$node" -o %t 2>/dev/null)" = idle ] || fail "node $node not idle after 30 s: $(sinfo -h -N 2>&1)"

# submit NAME [VAR=VALUE...] -- JOB...: runs the script on 2 tasks of 1 CPU
# each and waits; rc = the exit status of sbatch --wait (the job's).
submit() {
    local name=$1 vars=()
    shift
    while [ "$1" != -- ]; do vars+=("$1"); shift; done
    shift
    env "${vars[@]}" HYADES_BIN="$build" HYADES_PORT="$hyades_port" timeout 60 \
        sbatch --wait --quiet -J "$name" -N 1 -n 2 -c 1 -D "$tmp/run" -o "$tmp/log/job-$name.out" \
        "$script" "$@" >/dev/null 2>>"$tmp/log/sbatch.err"
    rc=$?
    [ $rc -eq 124 ] && fail "job $name still running after 60 s"
}
joined() {   # joined NAME: both workers joined, says the job's log
    grep -q "worker $node-0 joined" "$tmp/log/job-$1.out" && grep -q "worker $node-1 joined" "$tmp/log/job-$1.out"
}

"$build/hyades-manager" --quiet --local 2 "${job[@]}" -o "$tmp/ref.png" >/dev/null 2>&1 || fail "local run failed"

submit insecure HYADES_INSECURE=1 -- "${job[@]}" -o "$tmp/run/insecure.png"
[ "$rc" = 0 ] || fail "job without keys exited $rc"
cmp -s "$tmp/ref.png" "$tmp/run/insecure.png" || fail "job without keys: output missing or unlike the local run"
joined insecure || fail "job without keys: not both workers joined"

submit curve HYADES_KEYS="$tmp/keys" -- "${job[@]}" -o "$tmp/run/curve.png"
[ "$rc" = 0 ] || fail "job with keys exited $rc"
cmp -s "$tmp/ref.png" "$tmp/run/curve.png" || fail "job with keys: output missing or unlike the local run"
joined curve && grep -q 'CURVE' "$tmp/log/job-curve.out" || fail "job with keys: not both workers joined with CURVE"

submit badoption HYADES_INSECURE=1 -- mandelbrot --no-such-option -o "$tmp/run/bad.png"
[ "$rc" = 2 ] || fail "job with a bad option exited $rc, not 2"
submit nokeys -- "${job[@]}" -o "$tmp/run/nokeys.png"
[ "$rc" != 0 ] && grep -q 'HYADES_INSECURE=1' "$tmp/log/job-nokeys.out" || fail "job without keys or HYADES_INSECURE exited $rc"
# A key pair cut in half: refused before anything starts.
cp -a "$tmp/keys" "$tmp/halfkeys" && rm "$tmp/halfkeys/workers/task-1.cert_secret"
submit halfkeys HYADES_KEYS="$tmp/halfkeys" -- "${job[@]}" -o "$tmp/run/half.png"
[ "$rc" = 2 ] && grep -q 'task-1.cert_secret is missing' "$tmp/log/job-halfkeys.out" \
    || fail "job with half a key pair exited $rc, not 2 with the reason"
# A worker that cannot start (its secret key readable by all): the step and
# the job end with a failure, instead of the manager waiting for it.
cp -a "$tmp/keys" "$tmp/badkeys" && chmod 644 "$tmp/badkeys/workers/task-1.cert_secret"
submit badkeys HYADES_KEYS="$tmp/badkeys" -- "${job[@]}" -o "$tmp/run/badkeys.png"
[ "$rc" != 0 ] || fail "job whose worker could not start exited 0"
[ -z "$(squeue -h)" ] || fail "jobs left in the queue: $(squeue -h)"

say "passed: hyades.sbatch on a one-node Slurm cluster (2 tasks, with and without keys) wrote the local run's bytes; bad jobs, half a key pair and a worker that could not start failed"
