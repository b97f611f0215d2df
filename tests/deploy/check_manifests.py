#!/usr/bin/env python3
"""Checks rendered Kubernetes manifests of moor (deploy/kubernetes/).

Usage: check_manifests.py VARIANT FILE [VARIANT FILE ...]
VARIANT is base, example or tls; FILE is a multi-document YAML stream (the
output of `kubectl kustomize`, or the base files concatenated). Prints one
"ok"/"FAIL" line per check and "N passed, N failed".

There is no Kubernetes schema validator in Debian (kubeconform, kubeval are
not packaged), so this checks the fields that matter to moor by hand: the
ones whose mistakes would break member identity, quorum, probes, storage,
scale-down or backups.
"""
import re
import sys

import yaml

PASSED = 0
FAILED = 0

# What each variant must render to.
EXPECT = {
    "base": {"replicas": 3, "storage": "8Gi", "tls": False, "namespace": None, "quota": 2 << 30},
    "example": {"replicas": 5, "storage": "50Gi", "tls": False, "namespace": "moor", "quota": 8 << 30},
    "tls": {"replicas": 3, "storage": "8Gi", "tls": True, "namespace": None, "quota": 2 << 30},
}
# moord's graceful stop: 2 election timeouts (default 1000 ms) to hand over
# leadership + 3 s to finish requests (server/main.c).
MOORD_GRACEFUL_STOP_S = 2 * 1 + 3
PRESTOP = "/usr/local/lib/moor/prestop.sh"
NAMESPACED = {"ServiceAccount", "Role", "RoleBinding", "Service", "StatefulSet",
              "PodDisruptionBudget", "PersistentVolumeClaim", "CronJob"}


def check(name, cond):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print("ok   " + name)
    else:
        FAILED += 1
        print("FAIL " + name)


def get(obj, *path, default=None):
    for p in path:
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, list) and isinstance(p, int) and p < len(obj):
            obj = obj[p]
        else:
            return default
    return obj


def selects(selector, labels):
    """A matchLabels selector (or a Service's plain selector) picks labels."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def quantity_bytes(q):
    """A Kubernetes quantity (8Gi, 500M, 1073741824) in bytes."""
    m = re.fullmatch(r"([0-9]+)([KMGTP]i?)?", str(q))
    if not m:
        return 0
    mult = {None: 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
            "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50}
    return int(m.group(1)) * mult[m.group(2)]


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def check_variant(variant, path):
    exp = EXPECT[variant]
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    v = variant + ": "
    check(v + "every document has apiVersion, kind and metadata.name",
          all(d.get("apiVersion") and d.get("kind") and get(d, "metadata", "name") for d in docs))
    by = {}
    for d in docs:
        by.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    check(v + "no object is defined twice", len(names) == len(set(names)))
    if exp["namespace"]:
        check(v + "every namespaced object is in namespace " + exp["namespace"],
              all(get(d, "metadata", "namespace") == exp["namespace"]
                  for d in docs if d["kind"] in NAMESPACED))

    sts = get(by, "StatefulSet", "moor")
    check(v + "a StatefulSet named moor (its pods are moor-N, which the entrypoint parses)",
          sts is not None)
    if sts is None:
        return
    spec = sts["spec"]
    pod = spec["template"]
    plabels = get(pod, "metadata", "labels", default={})
    pspec = pod["spec"]
    cs = pspec.get("containers", [])
    check(v + "one container, moord", len(cs) == 1 and cs[0].get("name") == "moord")
    c = cs[0]
    env = env_of(c)

    check(v + "replicas %d" % exp["replicas"], spec.get("replicas") == exp["replicas"])
    check(v + "parallel pod start (podManagementPolicy Parallel)",
          spec.get("podManagementPolicy") == "Parallel")
    check(v + "the StatefulSet's selector picks its own pods",
          selects(get(spec, "selector", "matchLabels"), plabels))
    check(v + "rolling update one pod at a time",
          get(spec, "updateStrategy", "type", default="RollingUpdate") == "RollingUpdate" and
          get(spec, "updateStrategy", "rollingUpdate", "maxUnavailable", default=1) == 1)
    check(v + "PVCs of scaled-down members are deleted, kept when the set is deleted",
          get(spec, "persistentVolumeClaimRetentionPolicy", "whenScaled") == "Delete" and
          get(spec, "persistentVolumeClaimRetentionPolicy", "whenDeleted") == "Retain")

    # identity: headless Service, DNS domain
    peers_name = spec.get("serviceName")
    peers = get(by, "Service", peers_name or "")
    check(v + "serviceName names a Service in the set (%s)" % peers_name, peers is not None)
    if peers:
        check(v + "the peer Service is headless", get(peers, "spec", "clusterIP") == "None")
        check(v + "the peer Service publishes not-ready addresses (members find each other before a leader exists)",
              get(peers, "spec", "publishNotReadyAddresses") is True)
        check(v + "the peer Service selects the members", selects(get(peers, "spec", "selector"), plabels))
        pports = {p.get("port") for p in get(peers, "spec", "ports", default=[])}
        check(v + "the peer Service carries 2380 (peers) and 2379 (the entrypoint asks peers)",
              {2379, 2380} <= pports)
    dom = get(env, "MOOR_PEER_DOMAIN", "value", default="")
    check(v + "MOOR_PEER_DOMAIN is the peer Service's domain (%s)" % dom,
          dom == "%s.$(POD_NAMESPACE).svc.cluster.local" % peers_name)
    envnames = [e["name"] for e in c.get("env", [])]
    check(v + "POD_NAMESPACE comes from the downward API before it is used",
          get(env, "POD_NAMESPACE", "valueFrom", "fieldRef", "fieldPath") == "metadata.namespace" and
          envnames.index("POD_NAMESPACE") < envnames.index("MOOR_PEER_DOMAIN"))
    reps = get(env, "MOOR_REPLICAS", "value")
    ireps = get(env, "MOOR_INITIAL_REPLICAS", "value")
    check(v + "MOOR_REPLICAS and MOOR_INITIAL_REPLICAS are the replica count (%s, %s)" % (reps, ireps),
          reps == str(exp["replicas"]) and ireps == str(exp["replicas"]))
    check(v + "a cluster token is set", bool(get(env, "MOOR_INITIAL_CLUSTER_TOKEN", "value")))

    client = get(by, "Service", "moor")
    check(v + "a client Service moor on 2379 that is not headless",
          client is not None and get(client, "spec", "clusterIP") != "None" and
          2379 in [p.get("port") for p in get(client, "spec", "ports", default=[])])
    if client:
        check(v + "the client Service selects the members", selects(get(client, "spec", "selector"), plabels))
        check(v + "the client Service sends to ready members only",
              get(client, "spec", "publishNotReadyAddresses", default=False) is False)
    cports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    check(v + "container ports client 2379 and peer 2380",
          cports.get("client") == 2379 and cports.get("peer") == 2380)
    for svc in (peers, client):
        for p in get(svc, "spec", "ports", default=[]) if svc else []:
            check(v + "Service %s port %s targets a container port" % (svc["metadata"]["name"], p.get("name")),
                  p.get("targetPort") in cports or p.get("targetPort") in cports.values())

    # storage
    vcts = spec.get("volumeClaimTemplates", [])
    vct = vcts[0] if vcts else {}
    check(v + "a volumeClaimTemplate data, ReadWriteOnce, %s" % exp["storage"],
          get(vct, "metadata", "name") == "data" and
          get(vct, "spec", "accessModes") == ["ReadWriteOnce"] and
          get(vct, "spec", "resources", "requests", "storage") == exp["storage"])
    quota = int(get(env, "MOOR_QUOTA_BACKEND_BYTES", "value", default="2147483648"))
    check(v + "backend quota %d bytes" % exp["quota"], quota == exp["quota"])
    check(v + "the volume holds 2 x quota + 1 GiB (a snapshot in flight, the WAL)",
          2 * quota + (1 << 30) <= quantity_bytes(get(vct, "spec", "resources", "requests", "storage", default="0")))
    ann = get(pod, "metadata", "annotations", default={})
    check(v + "pods are annotated for Prometheus: /metrics on 2379",
          ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "2379" and
          ann.get("prometheus.io/path") == "/metrics")
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    ddir = get(env, "MOOR_DATA_DIR", "value", default="")
    mpath = get(mounts, "data", "mountPath", default="")
    check(v + "the data directory %s is a subdirectory of the volume mounted at %s" % (ddir, mpath),
          bool(mpath) and ddir.startswith(mpath.rstrip("/") + "/"))
    if get(c, "securityContext", "readOnlyRootFilesystem"):
        check(v + "with a read-only root, /tmp is a volume", get(mounts, "tmp", "mountPath") == "/tmp")

    # probes
    for probe, want in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"),
                        ("startupProbe", "/livez")):
        p = c.get(probe, {})
        if exp["tls"]:
            # --client-cert-auth: the kubelet's HTTPS probe has no client
            # certificate, deploy/probe.sh presents the member's
            check(v + "%s runs probe.sh %s (with the member's certificate)" % (probe, want),
                  get(p, "exec", "command") == ["/usr/local/lib/moor/probe.sh", want]
                  and "httpGet" not in p)
            check(v + "%s allows probe.sh's 2 s curl (timeoutSeconds >= 3)" % probe,
                  p.get("timeoutSeconds", 1) >= 3)
            continue
        check(v + "%s GETs %s on the client port" % (probe, want),
              get(p, "httpGet", "path") == want and get(p, "httpGet", "port") in ("client", 2379))
        scheme = get(p, "httpGet", "scheme", default="HTTP")
        check(v + "%s uses HTTP with TLS off" % probe, scheme == "HTTP")
    sp = c.get("startupProbe", {})
    join_s = int(get(env, "MOOR_JOIN_TIMEOUT", "value", default="120"))
    check(v + "the startup probe waits longer than the entrypoint's join timeout (%d s)" % join_s,
          sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3) > join_s)

    # resources
    res = c.get("resources", {})
    check(v + "cpu and memory requests and limits",
          all(get(res, k, r) for k in ("requests", "limits") for r in ("cpu", "memory")))

    # placement and disruption
    terms = get(pspec, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", default=[])
    check(v + "required anti-affinity: one member per node",
          any(t.get("topologyKey") == "kubernetes.io/hostname" and
              selects(get(t, "labelSelector", "matchLabels"), plabels) for t in terms))
    pdbs = [d for d in by.get("PodDisruptionBudget", {}).values()
            if selects(get(d, "spec", "selector", "matchLabels"), plabels)]
    check(v + "a PodDisruptionBudget over the members with maxUnavailable 1",
          len(pdbs) == 1 and get(pdbs[0], "spec", "maxUnavailable") == 1 and
          get(pdbs[0], "spec", "minAvailable") is None)

    # stopping
    stop_s = int(get(env, "MOOR_STOP_TIMEOUT", "value", default="30"))
    grace = pspec.get("terminationGracePeriodSeconds", 30)
    check(v + "terminationGracePeriodSeconds %d > preStop %d s + moord's graceful stop %d s" %
          (grace, stop_s, MOORD_GRACEFUL_STOP_S), grace > stop_s + MOORD_GRACEFUL_STOP_S)
    check(v + "the preStop hook is " + PRESTOP,
          get(c, "lifecycle", "preStop", "exec", "command") == [PRESTOP])

    # the hook's access to the API
    sa = pspec.get("serviceAccountName")
    check(v + "the pods run as ServiceAccount %s, which exists" % sa, sa in by.get("ServiceAccount", {}))
    roles = {n: r for n, r in by.get("Role", {}).items()
             if any("statefulsets/scale" in ru.get("resources", []) and "get" in ru.get("verbs", []) and
                    "apps" in ru.get("apiGroups", []) and
                    sts["metadata"]["name"] in ru.get("resourceNames", [sts["metadata"]["name"]])
                    for ru in r.get("rules", []))}
    check(v + "a Role may get this StatefulSet's scale (and nothing is granted beyond get)",
          len(roles) == 1 and all(ru.get("verbs") == ["get"] for r in roles.values() for ru in r["rules"]))
    bound = [b for b in by.get("RoleBinding", {}).values()
             if get(b, "roleRef", "name") in roles and
             any(s.get("kind") == "ServiceAccount" and s.get("name") == sa and
                 s.get("namespace") == get(by, "ServiceAccount", sa, "metadata", "namespace",
                                           default=s.get("namespace"))
                 for s in b.get("subjects", []))]
    check(v + "a RoleBinding gives that Role to the pods' ServiceAccount", len(bound) == 1)

    # security
    psc = pspec.get("securityContext", {})
    check(v + "pods run as a non-root uid", psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0)
    check(v + "the volume is writable by the pod's group (fsGroup)", psc.get("fsGroup") is not None)
    csc = c.get("securityContext", {})
    check(v + "no privilege escalation, all capabilities dropped",
          csc.get("allowPrivilegeEscalation") is False and get(csc, "capabilities", "drop") == ["ALL"])

    # TLS
    tls = get(env, "MOOR_TLS", "value")
    check(v + "MOOR_TLS is %s" % ("true" if exp["tls"] else "false (the default)"),
          tls == ("true" if exp["tls"] else "false"))
    vols = {vol["name"]: vol for vol in pspec.get("volumes", [])}
    if exp["tls"]:
        tdir = get(env, "MOOR_TLS_DIR", "value", default="/etc/moor/tls")
        check(v + "the Secret moor-tls is mounted read-only at " + tdir,
              get(vols, "tls", "secret", "secretName") == "moor-tls" and
              get(mounts, "tls", "mountPath") == tdir and get(mounts, "tls", "readOnly") is True)
    else:
        check(v + "no TLS Secret is needed with TLS off", "tls" not in vols and "tls" not in mounts)

    # backups
    cj = get(by, "CronJob", "moor-backup")
    check(v + "a backup CronJob", cj is not None)
    if cj:
        check(v + "the CronJob's schedule has five fields", len(get(cj, "spec", "schedule", default="").split()) == 5)
        check(v + "backups never overlap (concurrencyPolicy Forbid)", get(cj, "spec", "concurrencyPolicy") == "Forbid")
        jp = get(cj, "spec", "jobTemplate", "spec", "template", "spec", default={})
        bc = get(jp, "containers", 0, default={})
        script = " ".join(bc.get("command", []) + bc.get("args", []))
        check(v + "the job runs `moorctl snapshot save`", re.search(r"moorctl snapshot save ", script) is not None)
        benv = env_of(bc)
        ep = get(benv, "MOORCTL_ENDPOINTS", "value", default="")
        check(v + "moorctl talks to the client Service (%s)" % ep,
              re.match(r"^(https?://)?moor:2379$", ep) is not None and
              (ep.startswith("https://") == exp["tls"]))
        bm = {m["name"]: m for m in bc.get("volumeMounts", [])}
        bv = {vol["name"]: vol for vol in jp.get("volumes", [])}
        claim = get(bv, "backup", "persistentVolumeClaim", "claimName")
        check(v + "snapshots go to /backup, a PVC defined here (%s)" % claim,
              get(bm, "backup", "mountPath") == "/backup" and claim in by.get("PersistentVolumeClaim", {}))
        check(v + "a failed job is retried a bounded number of times",
              get(jp, "restartPolicy") in ("OnFailure", "Never") and
              get(cj, "spec", "jobTemplate", "spec", "backoffLimit") is not None)
        if exp["tls"]:
            check(v + "the backup job has the client certificate",
                  get(bv, "tls", "secret", "secretName") == "moor-tls" and
                  get(benv, "MOORCTL_CERT", "value") is not None)


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        print(__doc__)
        return 2
    for i in range(0, len(args), 2):
        check_variant(args[i], args[i + 1])
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 0 if FAILED == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
