#!/usr/bin/env bash
# Checks the Kubernetes manifests of deploy/k8s without a cluster (no
# single-node Kubernetes runs offline here): valid YAML, the objects and fields
# a cluster needs, the Service selecting the manager pod, the volumes holding
# the files the commands name, --min-workers matching the workers' parallelism,
# and every option the commands use accepted by the programs (their --help).
# Exit 0, or 1 with the reasons. Needs python3 with PyYAML (installed if missing).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${HYADES_BUILD:-$here/build}
if ! python3 -c 'import yaml' 2>/dev/null; then
    apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null; }
fi
"$build/hyades-manager" --help > /tmp/hyades-k8s-manager-help.$$
"$build/hyades-worker" --help > /tmp/hyades-k8s-worker-help.$$
trap 'rm -f /tmp/hyades-k8s-*-help.$$' EXIT
python3 - "$here/deploy/k8s" /tmp/hyades-k8s-manager-help.$$ /tmp/hyades-k8s-worker-help.$$ <<'PY'
import glob, os, re, sys, yaml
folder, manager_help, worker_help = sys.argv[1:4]
helps = {"hyades-manager": open(manager_help).read(), "hyades-worker": open(worker_help).read()}
problems, objects = [], []
for path in sorted(glob.glob(os.path.join(folder, "*.yaml"))):
    try:
        docs = [d for d in yaml.safe_load_all(open(path)) if d is not None]
    except yaml.YAMLError as e:
        problems.append(f"{path}: not YAML: {e}")
        continue
    for d in docs:
        for field in ("apiVersion", "kind", "metadata"):
            if field not in d:
                problems.append(f"{path}: an object without {field}")
        objects.append((path, d))
kinds = {}
for path, d in objects:
    kinds.setdefault(d.get("kind"), []).append(d)
for need in ("Namespace", "Service", "Job"):
    if need not in kinds:
        problems.append(f"no {need}")
ns = {d["metadata"]["name"] for d in kinds.get("Namespace", [])}
for path, d in objects:
    if d.get("kind") != "Namespace" and d["metadata"].get("namespace") not in ns:
        problems.append(f"{path}: {d['kind']} {d['metadata'].get('name')} is not in the hyades namespace")
jobs = {d["metadata"]["name"]: d for d in kinds.get("Job", [])}
def pod(job):
    return job["spec"]["template"]
def container(job):
    return pod(job)["spec"]["containers"][0]
def program(job):
    return os.path.basename(container(job).get("command", [""])[0])
try:
    manager = next((j for j in jobs.values() if program(j) == "hyades-manager"), None)
    worker = next((j for j in jobs.values() if program(j) == "hyades-worker"), None)
except (KeyError, IndexError, TypeError) as e:
    manager = worker = None
    problems.append(f"a Job without a container command: {e}")
if not manager or not worker:
    problems.append("need a Job running hyades-manager and one running hyades-worker")
else:
    for job in (manager, worker):
        c = container(job)
        program = os.path.basename(c["command"][0])
        if "args" not in c:
            problems.append(f"{program}: no args")
            continue
        if pod(job)["spec"].get("restartPolicy") not in ("Never", "OnFailure"):
            problems.append(f"{program}: a Job's pods need restartPolicy Never or OnFailure")
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
        files = set()
        for v in pod(job)["spec"].get("volumes", []):
            if "secret" in v and v["name"] in mounts:
                for item in v["secret"].get("items", []):
                    files.add(os.path.join(mounts[v["name"]], item["path"]))
                    if v["secret"]["secretName"] != "hyades-keys":
                        problems.append(f"{program}: the keys come from another Secret")
        words = c["args"]
        for w in words:
            m = re.match(r"(--[a-z-]+)(=(.*))?$", w)
            if not m:
                continue
            flag, value = m.group(1), m.group(3)
            if program == "hyades-manager" and words.index(w) > words.index(next(x for x in words if not x.startswith("-"))):
                continue   # the job's own options
            if not re.search(r"(^|[\s,])" + re.escape(flag) + r"($|[\s=,])", helps[program], re.M):
                problems.append(f"{program} has no option {flag}")
            if flag in ("--cert", "--manager-key") and value not in files:
                problems.append(f"{program} {flag}={value}: no volume puts a file there")
            if flag == "--cert" and value + "_secret" not in files:
                problems.append(f"{program} {flag}={value}: no secret key beside it")
            if flag == "--allow" and not any(f.startswith(value + "/") for f in files):
                problems.append(f"{program} --allow={value}: no certificate in it")
    args = dict(re.match(r"(--[a-z-]+)=?(.*)", w).groups() for w in container(manager)["args"] if w.startswith("--") and "=" in w)
    wargs = dict(re.match(r"(--[a-z-]+)=?(.*)", w).groups() for w in container(worker)["args"] if w.startswith("--") and "=" in w)
    # Pods that share one key pair are one worker to the manager: waiting for
    # more than one would wait forever.
    if int(args.get("--min-workers", "0") or 0) != 1:
        problems.append("the worker pods share one key, so they count as one worker: --min-workers must be 1")
    if manager["spec"].get("backoffLimit") != 0 or pod(manager)["spec"].get("restartPolicy") != "Never":
        problems.append("the manager Job must not be retried (backoffLimit 0, restartPolicy Never)")
    for job in (manager, worker):
        for v in pod(job)["spec"].get("volumes", []):
            mode = v.get("secret", {}).get("defaultMode")
            if "secret" in v and (mode is None or mode & 0o027):
                problems.append(f"{container(job)['command'][0]}: the keys volume needs defaultMode 0440 or 0400 "
                                f"(the programs refuse secret keys others can read)")
    port = lambda endpoint: endpoint.rsplit(":", 1)[-1]
    if "--bind" not in args or port(args["--bind"]) != port(wargs.get("--connect", "")):
        problems.append("the workers connect to another port than the manager binds")
    if not args.get("--bind", "").startswith("tcp://0.0.0.0:"):
        problems.append("the manager must bind tcp://0.0.0.0 to be reachable from other pods")
    if "--exit-when-done" not in container(worker)["args"]:
        problems.append("the workers do not use --exit-when-done (their pods would never end)")
    labels = pod(manager)["metadata"]["labels"]
    for svc in kinds.get("Service", []):
        if svc["spec"].get("clusterIP") != "None":
            problems.append("the manager's Service must be headless (clusterIP: None)")
        if any(labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
            problems.append("the Service does not select the manager pod")
        connect = next((w for w in container(worker)["args"] if w.startswith("--connect=")), "--connect=")
        name, ns_name = svc["metadata"]["name"], svc["metadata"]["namespace"]
        if not (connect.startswith(f"--connect=tcp://{name}:") or connect.startswith(f"--connect=tcp://{name}.{ns_name}.")):
            problems.append(f"the workers connect to {connect}, not to the Service {name} of {ns_name}")
        if svc["spec"]["selector"].get("app.kubernetes.io/component") != "manager":
            problems.append("the Service must select the manager pod alone (component: manager)")
for p in problems:
    print("k8s-check:", p)
print("k8s-check:", "FAILED" if problems else f"ok ({len(objects)} objects)")
sys.exit(1 if problems else 0)
PY
