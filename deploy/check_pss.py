#!/usr/bin/env python3
"""Checks rendered manifests against the Pod Security Standards "restricted" profile (which
includes "baseline"), field by field, as the Pod Security admission controller does
(https://kubernetes.io/docs/concepts/security/pod-security-standards/, Kubernetes 1.37).

    python3 deploy/check_pss.py FILE...        check every pod template in the files ('-': stdin)
    python3 deploy/check_pss.py --hardening FILE...
                                               also require readOnlyRootFilesystem: true and a
                                               non-root runAsUser/runAsGroup (beyond PSS)
    python3 deploy/check_pss.py --self-test    a compliant pod must pass, and each of a set of
                                               non-compliant pods must fail on its own check

Pod templates are found in Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob
and ReplicationController objects. Prints one PASS/FAIL line per check and object; exits 1 on
any violation (or when the files hold no pod template), 0 otherwise.
"""

from __future__ import annotations

import copy
import sys

import yaml

# Volume types "restricted" allows.
ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}
VOLUME_FIELDS_IGNORED = {"name"}
# Sysctls "baseline" allows.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
APPARMOR_OK = {"RuntimeDefault", "Localhost"}
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def pod_template(obj: dict) -> tuple[dict, dict] | None:
    """(pod metadata, pod spec) of a workload, or None."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        return obj.get("metadata") or {}, spec
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"):
        t = spec.get("template") or {}
        return t.get("metadata") or {}, t.get("spec") or {}
    if kind == "CronJob":
        t = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        return t.get("metadata") or {}, t.get("spec") or {}
    return None


def containers(spec: dict) -> list[tuple[str, dict]]:
    out = []
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(field) or []:
            out.append((f"{field}[{c.get('name', '?')}]", c))
    return out


def check_pod(meta: dict, spec: dict, hardening: bool = False) -> list[tuple[str, bool, str]]:
    """Every check as (name, passed, detail)."""
    results: list[tuple[str, bool, str]] = []

    def check(name: str, bad: list[str]) -> None:
        results.append((name, not bad, "; ".join(bad)))

    psc = spec.get("securityContext") or {}
    cs = containers(spec)
    sc = {where: (c.get("securityContext") or {}) for where, c in cs}

    # --- baseline
    check("hostNetwork/hostPID/hostIPC unset or false",
          [f"spec.{f}: true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)])
    check("no privileged containers",
          [f"{w}.securityContext.privileged: true" for w, s in sc.items() if s.get("privileged")])
    check("no Windows HostProcess",
          [f"{w}: hostProcess" for w, s in [("spec", psc), *sc.items()]
           if (s.get("windowsOptions") or {}).get("hostProcess")])
    check("no hostPath volumes",
          [f"volume {v.get('name')}: hostPath" for v in spec.get("volumes") or [] if "hostPath" in v])
    check("no hostPort",
          [f"{w}.ports[{p.get('name', p.get('containerPort'))}].hostPort: {p['hostPort']}"
           for w, c in cs for p in c.get("ports") or [] if p.get("hostPort")])
    apparmor_bad = [f"{w}.appArmorProfile.type: {s['appArmorProfile'].get('type')}"
                    for w, s in [("spec.securityContext", psc), *sc.items()]
                    if s.get("appArmorProfile") and s["appArmorProfile"].get("type") not in APPARMOR_OK]
    apparmor_bad += [f"annotation {k}: {v}" for k, v in (meta.get("annotations") or {}).items()
                     if k.startswith(APPARMOR_ANNOTATION) and v != "runtime/default"
                     and not str(v).startswith("localhost/")]
    check("AppArmor RuntimeDefault or Localhost (or unset)", apparmor_bad)
    selinux_bad = []
    for w, s in [("spec.securityContext", psc), *sc.items()]:
        o = s.get("seLinuxOptions") or {}
        if o.get("type", "") not in SELINUX_TYPES:
            selinux_bad.append(f"{w}.seLinuxOptions.type: {o.get('type')}")
        selinux_bad += [f"{w}.seLinuxOptions.{f} set" for f in ("user", "role") if o.get(f)]
    check("SELinux type allowed, user/role unset", selinux_bad)
    check("/proc mount Default",
          [f"{w}.procMount: {s['procMount']}" for w, s in sc.items()
           if s.get("procMount") not in (None, "Default")])
    check("sysctls in the safe set",
          [f"sysctl {x.get('name')}" for x in psc.get("sysctls") or [] if x.get("name") not in SAFE_SYSCTLS])
    # --- restricted
    check("volume types allowed (configMap, csi, downwardAPI, emptyDir, ephemeral, "
          "persistentVolumeClaim, projected, secret)",
          [f"volume {v.get('name')}: {', '.join(sorted(set(v) - VOLUME_FIELDS_IGNORED - ALLOWED_VOLUMES))}"
           for v in spec.get("volumes") or [] if set(v) - VOLUME_FIELDS_IGNORED - ALLOWED_VOLUMES])
    check("allowPrivilegeEscalation: false",
          [f"{w}.securityContext.allowPrivilegeEscalation: {s.get('allowPrivilegeEscalation')}"
           for w, s in sc.items() if s.get("allowPrivilegeEscalation") is not False])
    nonroot_bad = [f"{w}.securityContext.runAsNonRoot: false" for w, s in sc.items()
                   if s.get("runAsNonRoot") is False]
    if psc.get("runAsNonRoot") is not True:
        nonroot_bad += [f"{w}: runAsNonRoot not true (nor on the pod)" for w, s in sc.items()
                        if s.get("runAsNonRoot") is not True]
    if psc.get("runAsNonRoot") is False:
        nonroot_bad.append("spec.securityContext.runAsNonRoot: false")
    check("runAsNonRoot: true", nonroot_bad)
    check("runAsUser not 0",
          [f"{w}.runAsUser: 0" for w, s in [("spec.securityContext", psc), *sc.items()]
           if s.get("runAsUser") == 0])
    seccomp_bad = []
    pod_type = (psc.get("seccompProfile") or {}).get("type")
    if pod_type is not None and pod_type not in ("RuntimeDefault", "Localhost"):
        seccomp_bad.append(f"spec.securityContext.seccompProfile.type: {pod_type}")
    for w, s in sc.items():
        t = (s.get("seccompProfile") or {}).get("type")
        if t is not None and t not in ("RuntimeDefault", "Localhost"):
            seccomp_bad.append(f"{w}.seccompProfile.type: {t}")
        elif t is None and pod_type is None:
            seccomp_bad.append(f"{w}: no seccompProfile (nor on the pod)")
    check("seccompProfile RuntimeDefault or Localhost", seccomp_bad)
    check("capabilities drop ALL",
          [f"{w}.capabilities.drop: {(s.get('capabilities') or {}).get('drop')}" for w, s in sc.items()
           if "ALL" not in ((s.get("capabilities") or {}).get("drop") or [])])
    check("capabilities add only NET_BIND_SERVICE",
          [f"{w}.capabilities.add: {add}" for w, s in sc.items()
           if (add := [a for a in (s.get("capabilities") or {}).get("add") or [] if a != "NET_BIND_SERVICE"])])
    # --- beyond PSS
    if hardening:
        check("[hardening] readOnlyRootFilesystem: true",
              [f"{w}.readOnlyRootFilesystem: {s.get('readOnlyRootFilesystem')}" for w, s in sc.items()
               if s.get("readOnlyRootFilesystem") is not True])
        ids_bad = []
        for f in ("runAsUser", "runAsGroup"):
            ids_bad += [f"{w}: {f} {s.get(f, psc.get(f))}" for w, s in sc.items()
                        if not isinstance(s.get(f, psc.get(f)), int) or s.get(f, psc.get(f)) == 0]
        check("[hardening] runAsUser and runAsGroup set, not 0", ids_bad)
    if not cs:
        results.append(("has containers", False, "no containers"))
    return results


def check_files(paths: list[str], hardening: bool) -> int:
    failed, pods = 0, 0
    for path in paths:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        for obj in yaml.safe_load_all(text):
            if not isinstance(obj, dict):
                continue
            found = pod_template(obj)
            if found is None:
                continue
            pods += 1
            name = f"{obj['kind']} {(obj.get('metadata') or {}).get('namespace', '')}/{(obj.get('metadata') or {}).get('name')}"
            print(f"== {name} ({path})")
            for check, ok, detail in check_pod(*found, hardening=hardening):
                print(f"{'PASS' if ok else 'FAIL'}  {check}{'' if ok else '  <- ' + detail}")
                failed += not ok
    if pods == 0:
        print("FAIL  no pod template found")
        return 1
    print(f"{'FAIL' if failed else 'PASS'}: {pods} pod template(s), {failed} violation(s)")
    return 1 if failed else 0


GOOD = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "good", "namespace": "t"},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "c", "image": "x",
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
        }],
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
    },
}


def mutate(path: str, value) -> dict:
    """GOOD with the dotted path (list indexes as numbers) set to value."""
    pod = copy.deepcopy(GOOD)
    keys = path.split(".")
    node = pod
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node.setdefault(k, {})
    last = keys[-1]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return pod


DELETE = object()
BAD_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "bad", "namespace": "t",
                 "annotations": {APPARMOR_ANNOTATION + "c": "unconfined"}},
    "spec": {
        "hostNetwork": True, "hostPID": True, "hostIPC": True,
        "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "Unconfined"},
                            "seLinuxOptions": {"type": "spc_t"},
                            "sysctls": [{"name": "kernel.msgmax", "value": "1"}],
                            "windowsOptions": {"hostProcess": True}},
        "containers": [{
            "name": "c", "image": "x",
            "ports": [{"containerPort": 80, "hostPort": 80}],
            "securityContext": {"privileged": True, "allowPrivilegeEscalation": True,
                                "runAsNonRoot": False, "procMount": "Unmasked",
                                "readOnlyRootFilesystem": False,
                                "capabilities": {"add": ["SYS_ADMIN"]}},
        }],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
    },
}
BAD = [  # (what is wrong, the pod, the check that must fail)
    ("hostNetwork", mutate("spec.hostNetwork", True), "hostNetwork/hostPID/hostIPC"),
    ("hostPID", mutate("spec.hostPID", True), "hostNetwork/hostPID/hostIPC"),
    ("hostIPC", mutate("spec.hostIPC", True), "hostNetwork/hostPID/hostIPC"),
    ("privileged", mutate("spec.containers.0.securityContext.privileged", True), "no privileged"),
    ("hostPath volume", mutate("spec.volumes", [{"name": "h", "hostPath": {"path": "/"}}]), "no hostPath"),
    ("nfs volume", mutate("spec.volumes", [{"name": "n", "nfs": {"server": "s", "path": "/"}}]), "volume types"),
    ("hostPort", mutate("spec.containers.0.ports", [{"containerPort": 80, "hostPort": 80}]), "no hostPort"),
    ("allowPrivilegeEscalation unset", mutate("spec.containers.0.securityContext.allowPrivilegeEscalation", DELETE), "allowPrivilegeEscalation"),
    ("runAsNonRoot unset", mutate("spec.securityContext.runAsNonRoot", DELETE), "runAsNonRoot"),
    ("runAsNonRoot false on a container", mutate("spec.containers.0.securityContext.runAsNonRoot", False), "runAsNonRoot"),
    ("runAsUser 0", mutate("spec.containers.0.securityContext.runAsUser", 0), "runAsUser not 0"),
    ("seccomp unset", mutate("spec.securityContext.seccompProfile", DELETE), "seccompProfile"),
    ("seccomp Unconfined", mutate("spec.securityContext.seccompProfile", {"type": "Unconfined"}), "seccompProfile"),
    ("capabilities not dropped", mutate("spec.containers.0.securityContext.capabilities", {}), "capabilities drop ALL"),
    ("SYS_ADMIN added", mutate("spec.containers.0.securityContext.capabilities.add", ["SYS_ADMIN"]), "capabilities add"),
    ("unsafe sysctl", mutate("spec.securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}]), "sysctls"),
    ("AppArmor unconfined", mutate("spec.containers.0.securityContext.appArmorProfile", {"type": "Unconfined"}), "AppArmor"),
    ("SELinux user", mutate("spec.securityContext.seLinuxOptions", {"user": "root"}), "SELinux"),
    ("procMount Unmasked", mutate("spec.containers.0.securityContext.procMount", "Unmasked"), "/proc mount"),
    ("writable root (hardening)", mutate("spec.containers.0.securityContext.readOnlyRootFilesystem", False), "[hardening] readOnlyRootFilesystem"),
]


def self_test() -> int:
    failures = []
    good = check_pod(GOOD["metadata"], GOOD["spec"], hardening=True)
    if not all(ok for _, ok, _ in good):
        failures.append(f"the compliant pod failed: {[c for c, ok, d in good if not ok]}")
    else:
        print("PASS  a compliant pod passes every check")
    # A pod wrong in every way, through the file path (as check-chart.sh calls it): must fail.
    import contextlib, io, os, tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(BAD_POD, f)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = check_files([f.name], hardening=True)
    os.unlink(f.name)
    n = out.getvalue().count("\nFAIL  ") + out.getvalue().startswith("FAIL  ")
    if rc != 1 or n < 17:
        failures.append(f"the non-compliant pod: exit {rc}, {n} failed checks:\n{out.getvalue()}")
    else:
        print(f"PASS  a pod wrong in every way is refused (exit 1, {n} of its checks fail)")
    for what, pod, must_fail in BAD:
        results = check_pod(pod["metadata"], pod["spec"], hardening=True)
        failed = [c for c, ok, _ in results if not ok]
        hit = [c for c in failed if c.startswith(must_fail)]
        if hit:
            print(f"PASS  {what}: refused by '{hit[0]}'")
        else:
            failures.append(f"{what}: expected '{must_fail}' to fail, failed: {failed}")
    for f in failures:
        print(f"FAIL  {f}")
    print(f"self-test: {len(BAD) + 2 - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    if argv == ["--self-test"]:
        return self_test()
    hardening = "--hardening" in argv
    paths = [a for a in argv if a != "--hardening"]
    if not paths or any(a.startswith("--") for a in paths):
        print(__doc__, file=sys.stderr)
        return 2
    return check_files(paths, hardening)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
