#!/usr/bin/env bash
# CI check of the Helm chart deploy/helm/phalanx and the plain manifests rendered from it.
#
# Usage (from anywhere): deploy/check-chart.sh
# For the default values, deploy/values-full.yaml (every option on) and a minimal set (every
# option off): `helm lint --strict`, `helm template` (and NOTES.txt), every rendered object
# against the Kubernetes 1.37 OpenAPI schemas (kubernetes-validate, strict), Pod Security
# Standards "restricted" (deploy/check_pss.py), the objects' references to each other, and the
# RBAC rules against deploy/rbac.yaml; then that the schema refuses unknown values, that the CRDs
# match deploy/crds/, the sweep Jobs of deploy/sweep/ (schemas and Pod Security), and
# `deploy/render.sh --check`.
#
# Installs into the virtualenv $PHALANX_CHART_VENV (default target/chart-venv, reused):
# helm-python-sdk (Helm's v4 Go SDK as a library, driven by deploy/helm/helm.py; the package has
# no `helm` executable: set HELM=/path/to/helm to use a real one instead), kubernetes-validate
# and PyYAML. Prints PASS/FAIL per check and a summary; exits non-zero on any failure.
set -euo pipefail

start=$(date +%s)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
chart=deploy/helm/phalanx
venv=${PHALANX_CHART_VENV:-$root/target/chart-venv}
export PHALANX_CHART_VENV=$venv
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! "$venv/bin/python" -c 'import helm_python, kubernetes_validate, yaml' 2>/dev/null; then
  echo "installing helm-python-sdk, kubernetes-validate, PyYAML into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    'helm-python-sdk==0.2.2' 'kubernetes-validate==1.37.0' 'PyYAML>=6'
fi
py="$venv/bin/python"
if [ -n "${HELM:-}" ]; then helm=("$HELM"); else helm=("$py" deploy/helm/helm.py); fi
kube_version=$("$py" -c 'import kubernetes_validate as k; print(k.latest_version())')
echo "helm: ${helm[*]} (Helm SDK $("$py" -c 'import helm_python as h; print(h.helm_sdk_version())'))"
echo "Kubernetes schemas: $kube_version (the newest kubernetes-validate has)"

passed=0
failed=0
step() { printf '\n== %s\n' "$*"; }
check() { # check "description" command... ; the command's success is the check
  local desc=$1 out; shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "PASS  $desc"
  else
    failed=$((failed + 1)); echo "FAIL  $desc"; echo "$out" | sed 's/^/      /' | head -40
  fi
}
fails_with() { # fails_with PATTERN command... : the command must fail, saying PATTERN
  local pattern=$1 out; shift
  if out=$("$@" 2>&1); then echo "succeeded, expected a failure saying: $pattern"; return 1; fi
  grep -qE -- "$pattern" <<<"$out" || { echo "failed without saying '$pattern':"; echo "$out"; return 1; }
}

# Validates every object of a rendered file against the Kubernetes schemas; objects of kinds
# it has no schema for (the Prometheus Operator's) are reported and skipped.
kube_validate() {
  "$py" - "$1" "$kube_version" <<'PY'
import sys, yaml, kubernetes_validate as kv
path, version = sys.argv[1], sys.argv[2]
bad = 0
for d in yaml.safe_load_all(open(path)):
    if not d:
        continue
    what = f"{d.get('kind')} {d.get('metadata', {}).get('name')}"
    try:
        kv.validate(d, version, strict=True)
        print(f"valid    {what}")
    except kv.SchemaNotFoundError:
        print(f"skipped  {what}: {d.get('apiVersion')} is a CRD type, no schema in kubernetes-validate")
    except kv.ValidationError as e:
        bad += 1
        print(f"INVALID  {what}: {str(e).splitlines()[0]} at {'/'.join(map(str, e.path))}")
sys.exit(1 if bad else 0)
PY
}

# The objects' references to each other: selectors, ports, ServiceAccount, Lease, rules.
consistent() {
  "$py" - "$1" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {}
for d in docs:
    by.setdefault(d["kind"], []).append(d)
one = lambda k: (by.get(k) or [None])[0]
problems = []
def need(cond, msg):
    if not cond:
        problems.append(msg)
dep, cm = one("Deployment"), one("ConfigMap")
need(dep and cm, "a Deployment and a ConfigMap")
pod = dep["spec"]["template"]
sel = dep["spec"]["selector"]["matchLabels"]
need(all(pod["metadata"]["labels"].get(k) == v for k, v in sel.items()), "pod labels match the selector")
spec = pod["spec"]
c = spec["containers"][0]
config = yaml.safe_load(cm["data"]["config.yaml"])
port = int(str(config.get("listen", "0.0.0.0:10259")).rsplit(":", 1)[1])
need([p["containerPort"] for p in c["ports"] if p["name"] == "admin"] == [port], "container port admin = config.listen's port")
need(c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz", "probes on /healthz and /readyz")
args = c["args"]
need(args[:3] == ["serve", "--config", "/etc/phalanx/config.yaml"] and args[3] == "--log-format" and args[4] in ("json", "text"),
     f"args serve --config ... --log-format json|text: {args}")
need(any(e["name"] == "POD_NAME" and e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name" for e in c["env"]), "POD_NAME from the downward API")
need(spec.get("automountServiceAccountToken") is True, "automountServiceAccountToken: true")
need(any(v.get("configMap", {}).get("name") == cm["metadata"]["name"] for v in spec["volumes"]), "the config volume names the ConfigMap")
need("checksum/config" in pod["metadata"]["annotations"], "checksum/config annotation")
le = config.get("leaderElection", {})
need(dep["spec"]["replicas"] == 1 or le.get("enabled", True), "several replicas need leader election")
ns = dep["metadata"]["namespace"]
sa_name = spec.get("serviceAccountName", "default")
for sa in by.get("ServiceAccount", []):
    need(sa["metadata"]["name"] == sa_name, f"ServiceAccount {sa['metadata']['name']} is the pods' ({sa_name})")
for b in by.get("ClusterRoleBinding", []) + by.get("RoleBinding", []):
    need(b["subjects"] == [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}], f"{b['kind']} {b['metadata']['name']} binds the pods' ServiceAccount")
    target = [r for r in by.get(b["roleRef"]["kind"], []) if r["metadata"]["name"] == b["roleRef"]["name"]]
    need(target, f"{b['kind']} {b['metadata']['name']} refers to a rendered {b['roleRef']['kind']}")
for r in by.get("Role", []):
    need(r["metadata"]["namespace"] == le.get("leaseNamespace"), f"the lease Role is in the Lease's namespace {le.get('leaseNamespace')}")
    need(r["rules"][1]["resourceNames"] == [le.get("leaseName", "phalanx")], "the lease Role names the Lease")
for rb in by.get("RoleBinding", []):
    need(rb["metadata"]["namespace"] == le.get("leaseNamespace"), "the lease RoleBinding is in the Lease's namespace")
svc = one("Service")
if svc:
    need(svc["spec"]["selector"] == sel, "the Service selects the Deployment's pods")
    need([p["name"] for p in svc["spec"]["ports"]] == ["http-metrics"] and svc["spec"]["ports"][0]["targetPort"] == "admin", "Service port http-metrics -> admin")
    need(svc["spec"]["type"] == "ClusterIP", "Service is ClusterIP")
for pdb in by.get("PodDisruptionBudget", []):
    need(pdb["spec"]["selector"]["matchLabels"] == sel, "the PodDisruptionBudget selects the Deployment's pods")
    need(dep["spec"]["replicas"] > 1, "a PodDisruptionBudget only with replicas > 1")
for sm in by.get("ServiceMonitor", []):
    need(svc is not None, "a ServiceMonitor needs the Service")
    need(all(svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items()), "the ServiceMonitor selects the Service")
    need(ns in sm["spec"]["namespaceSelector"]["matchNames"], "the ServiceMonitor looks in the release namespace")
    need(all(e["port"] == "http-metrics" and e["path"] == "/metrics" for e in sm["spec"]["endpoints"]), "ServiceMonitor endpoints: http-metrics /metrics")
for pr in by.get("PrometheusRule", []):
    for g in pr["spec"]["groups"]:
        need(g.get("name") and g.get("rules"), f"rule group {g.get('name')} has a name and rules")
        for r in g.get("rules") or []:
            need(r.get("expr") and (("alert" in r) != ("record" in r)), f"rule {r.get('alert') or r.get('record')}: expr and one of alert/record")
for crd in by.get("CustomResourceDefinition", []):
    need(crd["metadata"]["name"] == f"{crd['spec']['names']['plural']}.{crd['spec']['group']}", f"CRD {crd['metadata']['name']} is named plural.group")
for p in problems:
    print(f"broken: {p}")
print(f"{len(docs)} objects: {', '.join(sorted(set(d['kind'] for d in docs)))}")
sys.exit(1 if problems else 0)
PY
}

# The ClusterRole's and the lease Role's rules equal deploy/rbac.yaml's (the lease's name aside).
rbac_rules_match() {
  "$py" - "$1" deploy/rbac.yaml <<'PY'
import sys, yaml
def rules(path):
    # Every (Cluster)Role's rules, by kind and name without the release's full name.
    out = {}
    for d in yaml.safe_load_all(open(path)):
        if d and d["kind"] in ("ClusterRole", "Role"):
            rs = [dict(r) for r in d["rules"]]
            for r in rs:
                if "resourceNames" in r:
                    r["resourceNames"] = ["<lease>"]
            name = d["metadata"]["name"]
            role = next((s for s in ("-queue-admin", "-queue-viewer", "-leader-election")
                         if name.endswith(s)), "")
            out[(d["kind"], role)] = rs
    return out
have, want = rules(sys.argv[1]), rules(sys.argv[2])
if have != want:
    print(f"rendered: {have}\ndeploy/rbac.yaml: {want}")
    sys.exit(1)
PY
}

no_crd_dir() { [ ! -e "$chart/crds" ] || { echo "$chart/crds/ exists: Helm would install it unconditionally; the CRDs belong in $chart/files/crds/"; return 1; }; }
crds_match() { diff -r deploy/crds "$chart/files/crds"; }

step "deploy/check_pss.py --self-test"
check "PSS checker refuses non-compliant pods" "$py" deploy/check_pss.py --self-test

minimal=(--set 'rbac.create=false,serviceAccount.create=false,serviceAccount.name=phalanx-existing,service.enabled=false,podDisruptionBudget.enabled=false,replicaCount=1,config.leaderElection.enabled=false,priorityClassName=,affinity=null,crds.install=false')
for variant in default full minimal; do
  case $variant in
    default) ns=kube-system; args=() ;;
    full) ns=batch-system; args=(-f deploy/values-full.yaml) ;;
    minimal) ns=phalanx; args=("${minimal[@]}") ;;
  esac
  step "values: $variant (namespace $ns)"
  rendered="$work/$variant.yaml"
  check "helm lint --strict" "${helm[@]}" lint "$chart" --strict --namespace "$ns" "${args[@]}"
  check "helm template" sh -c '"$@" >"'"$rendered"'"' _ "${helm[@]}" template phalanx "$chart" --namespace "$ns" "${args[@]}"
  check "NOTES.txt renders" "$py" deploy/helm/helm.py template phalanx "$chart" --namespace "$ns" --notes "${args[@]}"
  check "Kubernetes $kube_version schemas (strict)" kube_validate "$rendered"
  check "Pod Security Standards restricted (+ read-only root, non-root ids)" "$py" deploy/check_pss.py --hardening "$rendered"
  check "objects refer to each other correctly" consistent "$rendered"
  if [ "$variant" != minimal ]; then
    check "RBAC rules equal deploy/rbac.yaml's" rbac_rules_match "$rendered"
  else
    check "no RBAC objects with rbac.create=false" sh -c '! grep -qE "^kind: (Cluster)?Role" "'"$rendered"'"'
  fi
done
# What each check printed, for the log: the validation and PSS of the full values.
step "details (values: full)"
{ kube_validate "$work/full.yaml" || true; } | sed 's/^/  /'
{ "$py" deploy/check_pss.py --hardening "$work/full.yaml" || true; } | sed 's/^/  /'

step "the values schema refuses what the scheduler would refuse"
check "an unknown top-level value" fails_with "additional properties 'nonsense'" "${helm[@]}" template phalanx "$chart" --set nonsense=1
check "an unknown config field" fails_with "/config.*additional properties 'cyclePeriod'" "${helm[@]}" template phalanx "$chart" --set config.cyclePeriod=5
check "logFormat other than json|text" fails_with "/logFormat" "${helm[@]}" template phalanx "$chart" --set logFormat=xml
check "replicas > 1 without leader election" fails_with "needs config.leaderElection.enabled" "${helm[@]}" template phalanx "$chart" --set config.leaderElection.enabled=false
check "PrometheusRule with no rules renders" "${helm[@]}" template phalanx "$chart" --set prometheusRule.enabled=true

step "CRDs"
check "no $chart/crds/ (Helm would install it whatever crds.install says)" no_crd_dir
check "$chart/files/crds/ = deploy/crds/ (both generated from k8s/src/crd.rs)" crds_match
check "crds.install=false renders no CRD" sh -c '! "$@" | grep -q "^kind: CustomResourceDefinition"' _ "${helm[@]}" template phalanx "$chart"

step "deploy/sweep/: the what-if sweep's Indexed Job and merge Job"
for f in deploy/sweep/sweep.yaml deploy/sweep/merge.yaml; do
  check "$f: Kubernetes $kube_version schemas (strict)" kube_validate "$f"
  check "$f: Pod Security Standards restricted (+ read-only root, non-root ids)" "$py" deploy/check_pss.py --hardening "$f"
done

step "deploy/render.sh --check"
check "plain manifests are the chart's rendering" bash deploy/render.sh --check

secs=$(( $(date +%s) - start ))
printf '\nchart checks: %d passed, %d failed (%ds)\n' "$passed" "$failed" "$secs"
[ "$failed" -eq 0 ]
