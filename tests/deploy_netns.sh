#!/usr/bin/env bash
# deploy/kubernetes/ps-sensor-pods.yaml: valid YAML, a DaemonSet whose
# ps-sensor options all exist (ps-sensor --help lists them) and whose
# ConfigMap ps-sensor reads (--print-config: netns all), with hostPID,
# the capabilities --netns keeps (keep_netns_caps in tools/ps-sensor.c)
# and no others, and every host directory mounted read-only.
. "$top_srcdir/tests/lib.sh"
command -v python3 >/dev/null || skip "python3 is not installed"
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"
M="$top_srcdir/deploy/kubernetes/ps-sensor-pods.yaml"
"$SENSOR" --help >"$WORK/help" 2>&1 || fail "ps-sensor --help"
python3 - "$M" "$WORK/help" "$top_srcdir/tools/ps-sensor.c" "$WORK/sensor.yaml" <<'PY' || fail "manifest check"
import re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
help_text = open(sys.argv[2]).read()
src = open(sys.argv[3]).read()
m = re.search(r"keep_netns_caps\(void\) \{\s*static const int keep\[\] = \{([^}]*)\}", src)
assert m, "keep_netns_caps's list in tools/ps-sensor.c"
kept = sorted(x.strip()[len("CAP_"):] for x in m.group(1).split(","))
assert len(kept) == 5, kept
ds = [d for d in docs if d["kind"] == "DaemonSet"]
assert len(ds) == 1, "one DaemonSet"
spec = ds[0]["spec"]["template"]["spec"]
assert spec.get("hostPID") is True, "hostPID"
c = spec["containers"][0]
for a in c["args"]:
    if a.startswith("-"):
        assert a in help_text, "option %s not in ps-sensor --help" % a
caps = c["securityContext"]["capabilities"]
assert caps["drop"] == ["ALL"], caps
assert sorted(caps["add"]) == kept, (caps, kept)
vols = {v["name"]: v for v in spec["volumes"]}
conf = c["args"][c["args"].index("--config") + 1]
for m in c["volumeMounts"]:
    v = vols[m["name"]]
    if "hostPath" in v:
        assert m.get("readOnly") is True, m
    if m["mountPath"] == conf:
        cm = [d for d in docs if d["kind"] == "ConfigMap"
              and d["metadata"]["name"] == v["configMap"]["name"]]
        assert len(cm) == 1, "its ConfigMap in the same file"
        open(sys.argv[4], "w").write(cm[0]["data"][m["subPath"]])
print("manifest ok:", len(c["args"]), "arguments,", len(caps["add"]), "capabilities")
PY
"$SENSOR" --config "$WORK/sensor.yaml" --print-config >"$WORK/print" 2>&1 ||
  fail "ps-sensor does not take the ConfigMap's sensor.yaml: $(cat "$WORK/print")"
grep -qx 'netns: \["all"\]' "$WORK/print" || fail "no netns: [all] in $(cat "$WORK/print")"
grep -qx 'runtime-root: "/run/containerd/io.containerd.runtime.v2.task"' "$WORK/print" ||
  fail "runtime-root is not containerd's"
ok "per-pod DaemonSet manifest"
