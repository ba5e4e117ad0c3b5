#!/usr/bin/env python3
"""`helm lint` and `helm template` without a helm binary: Helm v4's Go SDK through the PyPI
package helm-python-sdk (which ships libhelm_c, Helm's SDK behind a C ABI, and no `helm`
executable). deploy/render.sh and deploy/check-chart.sh call it; they install the package.

    helm.py lint CHART [-f VALUES]... [--set K=V]... [--strict]
    helm.py template NAME CHART [-n NAMESPACE] [-f VALUES]... [--set K=V]... [--notes]

`template` prints what `helm template` prints: every rendered manifest as
`---\\n# Source: CHART/templates/FILE`, in Helm's install order; `--notes` prints the rendered
NOTES.txt instead. Values are validated against the chart's values.schema.json first, as
`helm template` and `helm install` do.
"""

from __future__ import annotations

import argparse
import re
import sys

import helm_python as helm
import yaml

# Helm's install order (pkg/release/v1/util/kind_sorter.go); other kinds come last.
INSTALL_ORDER = """Namespace NetworkPolicy ResourceQuota LimitRange PodSecurityPolicy
PodDisruptionBudget ServiceAccount Secret SecretList ConfigMap StorageClass PersistentVolume
PersistentVolumeClaim CustomResourceDefinition ClusterRole ClusterRoleList ClusterRoleBinding
ClusterRoleBindingList Role RoleList RoleBinding RoleBindingList Service DaemonSet Pod
ReplicationController ReplicaSet Deployment HorizontalPodAutoscaler StatefulSet Job CronJob
IngressClass Ingress APIService MutatingWebhookConfiguration
ValidatingWebhookConfiguration""".split()


def merge(base: dict, over: dict) -> dict:
    """Helm's merging of two values files: maps merge key by key, anything else is replaced. A
    null is kept: coalescing with the chart's defaults then deletes that key, as in Helm."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def user_values(args: argparse.Namespace) -> dict:
    values: dict = {}
    for path in args.values:
        with open(path, encoding="utf-8") as f:
            values = merge(values, yaml.safe_load(f) or {})
    for expr in args.set:
        values = merge(values, helm.parse_set_string(expr))
    return values


def split_docs(text: str) -> list[str]:
    """A template's output split at `---` lines; whitespace-only documents dropped."""
    docs = re.split(r"(?m)^---[ \t]*$\n?", text)
    return [d.strip("\n") + "\n" for d in docs if d.strip()]


def kind_of(doc: str) -> str:
    try:
        obj = yaml.safe_load(doc)
    except yaml.YAMLError as e:
        sys.exit(f"helm.py: rendered YAML does not parse: {e}\n{doc}")
    return obj.get("kind", "") if isinstance(obj, dict) else ""


def template(args: argparse.Namespace) -> int:
    values = user_values(args)
    with helm.Chart.load(args.chart) as chart:
        chart.validate_schema(chart.merge_values(values))
        rendered = chart.render(
            values=values, name=args.name, namespace=args.namespace, is_install=True
        )
    if args.notes:
        notes = [t for p, t in rendered.items() if p.endswith("/NOTES.txt")]
        sys.stdout.write("".join(notes))
        return 0
    entries = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt") or path.rsplit("/", 1)[-1].startswith("_"):
            continue
        for doc in split_docs(rendered[path]):
            kind = kind_of(doc)
            if not kind:  # comments only
                continue
            rank = INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)
            entries.append((rank, path, doc))
    entries.sort(key=lambda e: (e[0], e[1]))  # stable: a file's documents keep their order
    for _, path, doc in entries:
        sys.stdout.write(f"---\n# Source: {path}\n{doc}")
    return 0


def lint(args: argparse.Namespace) -> int:
    report = helm.lint(args.chart, user_values(args), strict=args.strict, namespace=args.namespace)
    names = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
    failed = bool(report.get("errors"))
    print(f"==> Linting {args.chart}")
    for m in report.get("messages", []):
        sev = m.get("severity", 0)
        print(f"[{names.get(sev, sev)}] {m.get('path')}: {m.get('error')}")
        failed |= sev >= (2 if args.strict else 3)
    for e in report.get("errors") or []:
        print(f"[ERROR] {e}")
    n = report.get("total_charts_linted", 0)
    print(f"\n{n} chart(s) linted, {1 if failed else 0} chart(s) failed")
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(prog="helm.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("lint", "template"):
        s = sub.add_parser(name)
        if name == "template":
            s.add_argument("name")
            s.add_argument("--notes", action="store_true", help="print the rendered NOTES.txt")
        else:
            s.add_argument("--strict", action="store_true", help="warnings fail the lint")
        s.add_argument("chart")
        s.add_argument("-n", "--namespace", default="default")
        s.add_argument("-f", "--values", action="append", default=[])
        s.add_argument("--set", action="append", default=[])
    args = p.parse_args()
    try:
        return template(args) if args.command == "template" else lint(args)
    except helm.HelmError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
