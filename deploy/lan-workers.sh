#!/usr/bin/env bash
# lan-workers: starts or stops hyades workers on a list of hosts over ssh, for
# machines without systemd units. Each host needs hyades-worker on its PATH
# (make install) and, for a manager with keys, its key pair and the manager's
# public certificate.
#
#   deploy/lan-workers.sh start ENDPOINT HOST... [-- WORKER OPTIONS]
#   deploy/lan-workers.sh stop HOST...
#
# e.g. deploy/lan-workers.sh start tcp://10.0.0.1:5555 node1 node2 -- \
#          --cert worker.cert --manager-key manager.cert
# Workers log to ~/hyades-worker.log on their host (pid in ~/.hyades-worker.pid). $HYADES_SSH replaces
# "ssh" (for options, or for tests).
set -euo pipefail
ssh_cmd=${HYADES_SSH:-ssh}
usage() { sed -n '6,7p' "$0" | sed 's/^# *//' >&2; exit 2; }
[ $# -ge 2 ] || usage
action=$1; shift
case "$action" in
start)
    endpoint=$1; shift
    hosts=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do hosts+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    [ ${#hosts[@]} -gt 0 ] || usage
    opts=$(printf ' %q' "$@")
    for host in "${hosts[@]}"; do
        $ssh_cmd "$host" "nohup hyades-worker --connect $(printf %q "$endpoint") --name $(printf %q "$host")$opts \
            </dev/null >>~/hyades-worker.log 2>&1 & echo \$! >~/.hyades-worker.pid"
        echo "lan-workers: started a worker on $host"
    done ;;
stop)
    for host in "$@"; do
        $ssh_cmd "$host" 'kill -TERM "$(cat ~/.hyades-worker.pid)" && rm -f ~/.hyades-worker.pid' \
            && echo "lan-workers: stopped the worker on $host"
    done ;;
*) usage ;;
esac
