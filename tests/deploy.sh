#!/usr/bin/env bash
# The Kubernetes manifests, the Helm chart and the example configurations
# (tests/deploy_check.py). helm renders the chart where it is installed:
# $HELM, helm on PATH, or go's bin directory (.ci/run installs it there
# with `go install`); PS_REQUIRE_HELM=1 makes its absence a failure.
. "$top_srcdir/tests/lib.sh"
# Debian's python3 has python3-yaml (packages.txt); another python3 first
# on PATH may not.
py=python3
/usr/bin/python3 -c 'import yaml' 2>/dev/null && py=/usr/bin/python3
$py -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"
helm=${HELM:-$(command -v helm || true)}
if [ -z "$helm" ] && command -v go >/dev/null; then
  gobin=$(go env GOBIN); [ -n "$gobin" ] || gobin=$(go env GOPATH)/bin
  [ -x "$gobin/helm" ] && helm=$gobin/helm
fi
if [ -z "$helm" ] && [ -n "${PS_REQUIRE_HELM:-}" ]; then
  fail "PS_REQUIRE_HELM is set but no helm was found"
fi
[ -n "$helm" ] && "$helm" version --short
$py "$top_srcdir/tests/deploy_check.py" "$top_srcdir" "$SENSOR" "$RECEIVER" "$helm" ||
  fail "deployment files"
ok "deployment files checked${helm:+ (chart rendered by $helm)}"
