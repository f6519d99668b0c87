#!/usr/bin/env python3
"""Checks the deployment files (deploy/, etc/): every Kubernetes manifest
parses and has the properties docs/DEPLOYMENT.md promises; the Helm chart
renders the same (helm template, several value sets) or, without helm,
its templates are checked as far as that goes; every configuration key
is a long option of the tool that reads it.

Usage: deploy_check.py SRCDIR PS_SENSOR PS_RECEIVER [HELM]
Exit 0 all good, 1 a check failed (each failure printed)."""
import os
import re
import subprocess
import sys
import tempfile

import yaml

SRC, SENSOR, RECEIVER = sys.argv[1:4]
HELM = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def long_options(tool):
    out = subprocess.run([tool, "--help"], capture_output=True, text=True)
    opts = set(re.findall(r"--([a-z][a-z0-9-]+)", out.stdout + out.stderr))
    assert "version" in opts, tool + " --help lists no options"
    return opts - {"help", "version"}


SENSOR_OPTS = long_options(SENSOR) | {"filter"}
RECEIVER_OPTS = long_options(RECEIVER)


def check_config(text, opts, where, tool=None):
    cfg = yaml.safe_load(text)
    check(isinstance(cfg, dict) and cfg, where + ": a mapping of options")
    for k in cfg or {}:
        check(k in opts, "%s: %r is no long option of the tool" % (where, k))
    if tool:
        # the tool itself reads it: keys, value types, exclusive options
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(text)
            f.flush()
            r = subprocess.run([tool, "--config", f.name, "--print-config"],
                               capture_output=True, text=True)
        check(r.returncode == 0, "%s: %s --print-config: %s"
              % (where, os.path.basename(tool), r.stderr.strip()))
    return cfg or {}


# What ps-sensor --netns keeps (tools/ps-sensor.c, SECURITY.md).
NETNS_CAPS = ["DAC_READ_SEARCH", "NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SYS_PTRACE"]


def container(pod, name):
    cs = [c for c in pod["containers"] if c["name"] == name]
    return cs[0] if check(len(cs) == 1, "container " + name) else {}


def mounts_of(c):
    return {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}


def under_mount(path, c, vols, kinds, where):
    """path lies under a mount of c whose volume is one of kinds."""
    for mp, name in mounts_of(c).items():
        if path == mp or path.startswith(mp.rstrip("/") + "/"):
            v = vols.get(name, {})
            kind = [k for k in kinds if k in v or k == "pvc" and v == "pvc"]
            return check(kind, "%s: %s is on volume %s, not %s"
                         % (where, path, name, kinds))
    return check(False, "%s: %s is on no mounted volume (read-only root)"
                 % (where, path))


def check_resources(c, where):
    r = c.get("resources", {})
    for part in ("requests", "limits"):
        for res in ("cpu", "memory"):
            check(res in r.get(part, {}), "%s: resources.%s.%s" % (where, part, res))


def secret_refs(vols):
    return {v["secret"]["secretName"] for v in vols.values()
            if isinstance(v, dict) and "secret" in v}


def check_objects(docs, where, tls=True, auth=True, pods=False, shape=None):
    """pods: the per-pod sensor (--netns all) instead of the host's;
    shape, a dict, gets what the per-pod sensor's spec amounts to."""
    docs = [d for d in docs if d]
    by_kind = {}
    for d in docs:
        check("apiVersion" in d and "kind" in d and "name" in d.get("metadata", {}),
              where + ": apiVersion, kind, metadata.name")
        by_kind.setdefault(d["kind"], []).append(d)
    for kind, n in (("Namespace", 1), ("DaemonSet", 1), ("StatefulSet", 1),
                    ("Service", 1), ("ConfigMap", 2)):
        if not check(len(by_kind.get(kind, [])) == n, "%s: %d %s" % (where, n, kind)):
            return None
    ns = by_kind["Namespace"][0]["metadata"]["name"]
    for d in docs:
        if d["kind"] != "Namespace":
            check(d["metadata"].get("namespace") == ns,
                  "%s: %s %s in namespace %s" % (where, d["kind"], d["metadata"]["name"], ns))
    cms = {d["metadata"]["name"]: d["data"] for d in by_kind["ConfigMap"]}

    # ---- the sensor
    ds = by_kind["DaemonSet"][0]
    w = where + ": DaemonSet"
    pod = ds["spec"]["template"]["spec"]
    check(ds["spec"]["selector"]["matchLabels"].items()
          <= ds["spec"]["template"]["metadata"]["labels"].items(), w + ": selector matches its pods")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    if pods:
        check(not pod.get("hostNetwork"), w + ": not on the host network")
        check(not pod.get("hostIPC"), w + ": no hostIPC")
        proc = [v for v in vols.values() if v.get("hostPath", {}).get("path") == "/proc"]
        check(pod.get("hostPID") is True or proc, w + ": hostPID or the host's /proc")
    else:
        check(pod.get("hostNetwork") is True, w + ": hostNetwork: true")
        check(pod.get("dnsPolicy") == "ClusterFirstWithHostNet", w + ": dnsPolicy ClusterFirstWithHostNet")
        check(not pod.get("hostPID") and not pod.get("hostIPC"), w + ": no hostPID/hostIPC")
        check(not any("hostPath" in v for v in vols.values()), w + ": no hostPath volume")
    check({"operator": "Exists"} in pod.get("tolerations", []), w + ": tolerates every taint")
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c.get("securityContext", {})
        cw = "%s container %s" % (w, c["name"])
        check(sc.get("privileged", False) is False, cw + ": never privileged")
        check(sc.get("allowPrivilegeEscalation") is False, cw + ": allowPrivilegeEscalation false")
        check(sc.get("readOnlyRootFilesystem") is True, cw + ": readOnlyRootFilesystem")
        caps = sc.get("capabilities", {})
        check(caps.get("drop") == ["ALL"], cw + ": drop [ALL]")
        want = NETNS_CAPS if pods else ["NET_ADMIN", "NET_RAW"]
        check(sorted(caps.get("add", [])) == want,
              cw + ": adds exactly %s, not %s" % (want, caps.get("add")))
        check_resources(c, cw)
        for m in c.get("volumeMounts", []):
            if "hostPath" in vols.get(m["name"], {}):
                check(m.get("readOnly") is True, "%s: hostPath %s mounted readOnly"
                      % (cw, m["mountPath"]))
    c = container(pod, "sensor")
    args = c.get("command", []) + c.get("args", [])
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
          == "spec.nodeName", w + ": NODE_NAME from the downward API")
    check(args[:1] == ["ps-sensor"] and "--name" in args
          and args[args.index("--name") + 1] == "$(NODE_NAME)", w + ": --name $(NODE_NAME)")
    check("--config" in args, w + ": --config")
    conf_path = args[args.index("--config") + 1]
    m = [x for x in c["volumeMounts"] if x["mountPath"] == conf_path]
    check(m and vols[m[0]["name"]].get("configMap"), w + ": its config from a ConfigMap")
    scfg = check_config(cms[vols[m[0]["name"]]["configMap"]["name"]][m[0]["subPath"]],
                        SENSOR_OPTS, w + " sensor.yaml", SENSOR)
    check(scfg.get("receiver"), w + ": a receiver")
    if pods:
        check(scfg.get("netns") == ["all"], w + ": netns: [all]")
        check("interface" not in scfg, w + ": no interface (every one in each pod)")
        check("--node-name" in args and args[args.index("--node-name") + 1] == "$(NODE_NAME)",
              w + ": --node-name $(NODE_NAME)")
        rr = scfg.get("runtime-root", "")
        check(rr.startswith("/run/"), w + ": runtime-root under /run")
        for path in (rr, "/run/netns"):
            mp = [x for x in c.get("volumeMounts", []) if x["mountPath"] == path]
            check(mp and vols.get(mp[0]["name"], {}).get("hostPath", {}).get("path") == path
                  and mp[0].get("readOnly") is True,
                  w + ": the host's %s mounted readOnly at %s" % (path, path))
        if shape is not None:
            shape.update(hostPID=pod.get("hostPID"), caps=sorted(caps.get("add", [])),
                         hostPaths=sorted((v["hostPath"]["path"], m["mountPath"], m.get("readOnly"))
                                          for m in c["volumeMounts"]
                                          for v in [vols[m["name"]]] if "hostPath" in v),
                         config={k: scfg.get(k) for k in ("netns", "runtime-root", "netns-match",
                                                           "netns-loopback", "relinquish-privileges")},
                         args=args)
    else:
        check(scfg.get("interface"), w + ": an interface")
    if "spool-dir" in scfg:
        under_mount(scfg["spool-dir"], c, vols, ["emptyDir"], w)
    for key in ("tls-ca", "auth-key-file"):
        want = key == "tls-ca" and tls or key == "auth-key-file" and auth
        check((key in scfg) == want, "%s: %s %s" % (w, key, "set" if want else "not set"))
        if key in scfg:
            under_mount(scfg[key], c, vols, ["secret"], w)
    sensor_secrets = secret_refs(vols)

    # ---- the receiver
    ss = by_kind["StatefulSet"][0]
    w = where + ": StatefulSet"
    pod = ss["spec"]["template"]["spec"]
    labels = ss["spec"]["template"]["metadata"]["labels"]
    check(ss["spec"]["selector"]["matchLabels"].items() <= labels.items(), w + ": selector matches its pods")
    check(pod.get("securityContext", {}).get("runAsNonRoot") is True, w + ": runAsNonRoot")
    check(pod["securityContext"].get("runAsUser", 0) != 0, w + ": a non-root uid")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for t in ss["spec"].get("volumeClaimTemplates", []):
        vols[t["metadata"]["name"]] = "pvc"
        check(t["spec"]["resources"]["requests"].get("storage"), w + ": the claim's size")
    check("pvc" in vols.values(), w + ": a PersistentVolumeClaim")
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c.get("securityContext", {})
        cw = "%s container %s" % (w, c["name"])
        check(sc.get("privileged", False) is False, cw + ": not privileged")
        check(sc.get("allowPrivilegeEscalation") is False, cw + ": allowPrivilegeEscalation false")
        check(sc.get("readOnlyRootFilesystem") is True, cw + ": readOnlyRootFilesystem")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"] and
              not sc["capabilities"].get("add"), cw + ": no capability")
        check_resources(c, cw)
    c = container(pod, "receiver")
    args = c.get("command", []) + c.get("args", [])
    check(args[:1] == ["ps-receiver"] and "--config" in args, w + ": ps-receiver --config")
    conf_path = args[args.index("--config") + 1]
    m = [x for x in c["volumeMounts"] if x["mountPath"] == conf_path]
    check(m and vols[m[0]["name"]].get("configMap"), w + ": its config from a ConfigMap")
    rcfg = check_config(cms[vols[m[0]["name"]]["configMap"]["name"]][m[0]["subPath"]],
                        RECEIVER_OPTS, w + " receiver.yaml")
    under_mount(rcfg.get("write", "?"), c, vols, ["pvc"], w + " output")
    if "state" in rcfg:
        under_mount(rcfg["state"], c, vols, ["pvc"], w + " journal")
    for key in ("tls-cert", "tls-key"):
        check((key in rcfg) == tls, "%s: %s %s" % (w, key, "set" if tls else "not set"))
        if key in rcfg:
            under_mount(rcfg[key], c, vols, ["secret"], w)
    check(("auth-key-file" in rcfg) == auth, w + ": auth-key-file")
    if auth and "auth-key-file" in rcfg:
        # a copy with mode 600 made by an init container from the Secret
        under_mount(rcfg["auth-key-file"], c, vols, ["emptyDir", "secret"], w)
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    listen = rcfg.get("listen", [])
    check(len(listen) == 1 and listen[0].rsplit(":", 1)[1] == str(ports.get("stream")),
          w + ": listens on its containerPort")
    receiver_secrets = secret_refs(vols)
    check(bool(receiver_secrets | sensor_secrets) == (tls or auth), where + ": Secrets used iff TLS or auth")
    # ---- the Service
    svc = by_kind["Service"][0]
    w = where + ": Service"
    check(svc["spec"]["selector"].items() <= labels.items(), w + ": selects the receiver's pods")
    check(ss["spec"]["serviceName"] == svc["metadata"]["name"], w + ": the StatefulSet's serviceName")
    sp = svc["spec"]["ports"][0]
    check(sp["targetPort"] in ("stream", ports.get("stream")), w + ": targets the stream port")
    addr = scfg.get("receiver", ["?"])[0]
    host, port = addr.rsplit(":", 1)
    return host, port, svc, ns, sp


def load_dir(d, skip=()):
    docs = []
    for f in sorted(os.listdir(d)):
        if f.endswith((".yaml", ".yml")) and f not in skip:
            with open(os.path.join(d, f)) as fh:
                docs += [x for x in yaml.safe_load_all(fh) if x]
    return docs


# ---- etc/: the example configurations
for name, opts in (("sensor.yaml", SENSOR_OPTS), ("receiver.yaml", RECEIVER_OPTS)):
    text = open(os.path.join(SRC, "etc", name)).read()
    check_config(text, opts, "etc/" + name)
    # the commented-out examples are options too
    for k in re.findall(r"^#([a-z][a-z0-9-]+):", text, re.M):
        check(k in opts, "etc/%s: commented %r is no long option" % (name, k))
    # under the unit's StateDirectory (ProtectSystem=strict)
    cfg = yaml.safe_load(text)
    for key in ("spool-dir", "write", "state"):
        if key in cfg:
            check(cfg[key].startswith("/var/lib/packetstreamer/" + name.split(".")[0] + "/"),
                  "etc/%s: %s in the unit's StateDirectory" % (name, key))

# ---- deploy/kubernetes: the host's sensor (sensor.yaml) or the per-pod
# one (ps-sensor-pods.yaml) with the same namespace and receiver
kdir = os.path.join(SRC, "deploy/kubernetes")
PODS_FILES = ("ps-sensor-pods.yaml",)
HOST_FILES = ("sensor.yaml", "sensor-config.yaml")
got = check_objects(load_dir(kdir, skip=PODS_FILES), "deploy/kubernetes")
plain_pods = {}
check_objects(load_dir(kdir, skip=HOST_FILES), "deploy/kubernetes (ps-sensor-pods.yaml)",
              pods=True, shape=plain_pods)
host, port, svc, ns, sp = got or ("", "", {"metadata": {"name": "?"}}, "", {"port": 0})
check(host in ("%s.%s.svc" % (svc["metadata"]["name"], ns),
               "%s.%s.svc.cluster.local" % (svc["metadata"]["name"], ns))
      and port == str(sp["port"]), "deploy/kubernetes: the sensor streams to the Service")

# ---- deploy/helm
chart = os.path.join(SRC, "deploy/helm/packetstreamer")
values = yaml.safe_load(open(os.path.join(chart, "values.yaml")))
meta = yaml.safe_load(open(os.path.join(chart, "Chart.yaml")))
check(meta.get("apiVersion") == "v2" and meta.get("name") == "packetstreamer", "Chart.yaml")
tdir = os.path.join(chart, "templates")
for f in sorted(os.listdir(tdir)):
    text = open(os.path.join(tdir, f)).read()
    check(text.count("{{") == text.count("}}"), "templates/%s: balanced {{ }}" % f)
    for ref in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text):
        v = values
        for part in ref.split("."):
            ok = isinstance(v, dict) and part in v
            v = v.get(part) if ok else None
            if not ok:
                break
        check(ok, "templates/%s: .Values.%s is not in values.yaml" % (f, ref))
    if f.endswith(".yaml"):
        check(not re.search(r"privileged:\s*true", text), "templates/%s: never privileged" % f)
# without helm, at least: the per-pod branch of the sensor's template
text = open(os.path.join(tdir, "sensor.yaml")).read()
m = re.search(r"\{\{- if \$pods \}\}\s*add: \[([^]]*)\]", text)
check(m and sorted(x.strip() for x in m.group(1).split(",")) == NETNS_CAPS,
      "templates/sensor.yaml: pods mode adds %s" % NETNS_CAPS)
check(re.search(r"if \$pods \}\}\s*(#[^\n]*\s*)*hostPID: true", text),
      "templates/sensor.yaml: pods mode has hostPID: true")
check(values["sensor"]["mode"] == "host", "values.yaml: sensor.mode host by default")

if HELM:
    def render(*sets):
        cmd = [HELM, "template", "ps", chart, "--namespace", "packetstreamer"]
        for s in sets:
            cmd += ["--set", s]
        r = subprocess.run(cmd, capture_output=True, text=True)
        check(r.returncode == 0, "helm template %s: %s" % (" ".join(sets), r.stderr.strip()))
        return list(yaml.safe_load_all(r.stdout))

    h, p = (check_objects(render(), "helm (defaults)") or ("", ""))[:2]
    check(h == "packetstreamer-receiver.packetstreamer.svc" and p == "5555",
          "helm: the sensor streams to the chart's Service")
    check_objects(render("tls.enabled=false"), "helm (tls off)", tls=False)
    check_objects(render("tls.enabled=false", "auth.enabled=false"),
                  "helm (tls and auth off)", tls=False, auth=False)
    docs = render("sensor.receiverAddress=collector.example.net:6000",
                  "sensor.filter=tcp port 443", "receiver.port=6000",
                  "sensor.resources.limits.memory=2Gi",
                  "receiver.resources.requests.cpu=3")
    if check_objects(docs, "helm (values)") is None:
        sys.exit(1)
    scfg = yaml.safe_load([d for d in docs if d and d["kind"] == "ConfigMap"
                           and d["metadata"]["name"] == "packetstreamer-sensor"][0]["data"]["sensor.yaml"])
    check(scfg["receiver"] == ["collector.example.net:6000"], "helm: sensor.receiverAddress")
    check(scfg["filter"] == "tcp port 443", "helm: sensor.filter")
    ds = [d for d in docs if d and d["kind"] == "DaemonSet"][0]
    ss = [d for d in docs if d and d["kind"] == "StatefulSet"][0]
    check(ds["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "2Gi",
          "helm: sensor.resources")
    check(str(ss["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]) == "3",
          "helm: receiver.resources")
    # sensor.mode=pods: the same DaemonSet as ps-sensor-pods.yaml
    helm_pods = {}
    check_objects(render("sensor.mode=pods"), "helm (pods)", pods=True, shape=helm_pods)
    check(helm_pods == plain_pods, "helm (pods): as ps-sensor-pods.yaml:\n  %s\n  %s"
          % (helm_pods, plain_pods))
    docs = render("sensor.mode=pods", "tls.enabled=false",
                  "sensor.pods.runtimeRoot=/run/containers/storage/overlay-containers",
                  "sensor.pods.match={namespace=pay*,team=x}", "sensor.pods.loopback=true")
    got_pods = {}
    check_objects(docs, "helm (pods, values)", tls=False, pods=True, shape=got_pods)
    check(got_pods.get("config", {}).get("runtime-root") == "/run/containers/storage/overlay-containers"
          and got_pods["config"].get("netns-match") == ["namespace=pay*", "team=x"]
          and got_pods["config"].get("netns-loopback") is True,
          "helm: sensor.pods.runtimeRoot, match, loopback: %s" % got_pods.get("config"))
    r = subprocess.run([HELM, "template", "ps", chart, "--set", "sensor.mode=node"],
                       capture_output=True, text=True)
    check(r.returncode != 0 and "sensor.mode must be host or pods" in r.stderr,
          "helm: sensor.mode=node refused: %s" % r.stderr.strip())
    print("helm: chart rendered with 6 value sets and checked")
else:
    print("helm not found: the chart's templates were checked without rendering")

print("%d passed, %d failed" % (checks - len(failures), len(failures)))
sys.exit(1 if failures else 0)
