#!/usr/bin/env bash
# deploy/kubernetes/ps-sensor-pods.yaml: valid YAML, a DaemonSet whose
# ps-sensor options all exist (ps-sensor --help lists them), with
# hostPID, the capabilities --netns keeps and no others, and the
# runtime's state mounted read-only.
. "$top_srcdir/tests/lib.sh"
command -v python3 >/dev/null || skip "python3 is not installed"
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"
M="$top_srcdir/deploy/kubernetes/ps-sensor-pods.yaml"
"$SENSOR" --help >"$WORK/help" 2>&1 || fail "ps-sensor --help"
python3 - "$M" "$WORK/help" <<'PY' || fail "manifest check"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
help_text = open(sys.argv[2]).read()
ds = [d for d in docs if d["kind"] == "DaemonSet"]
assert len(ds) == 1, "one DaemonSet"
spec = ds[0]["spec"]["template"]["spec"]
assert spec.get("hostPID") is True, "hostPID"
c = spec["containers"][0]
for a in c["args"]:
    opt = a.split("=", 1)[0]
    assert opt in help_text, "option %s not in ps-sensor --help" % opt
assert "--netns=all" in c["args"]
caps = c["securityContext"]["capabilities"]
assert caps["drop"] == ["ALL"], caps
assert sorted(caps["add"]) == sorted(["SYS_ADMIN", "NET_RAW", "NET_ADMIN",
                                      "SYS_PTRACE", "DAC_READ_SEARCH"]), caps
for m in c["volumeMounts"]:
    assert m.get("readOnly") is True, m
print("manifest ok:", len(c["args"]), "options,", len(caps["add"]), "capabilities")
PY
ok "per-pod DaemonSet manifest"
