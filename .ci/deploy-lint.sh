#!/usr/bin/env bash
# The deployment files, checked where no Docker engine or cluster runs: hadolint on the
# Dockerfile, the compose file against the compose specification's JSON schema, the k8s
# manifests against Kubernetes' schemas (strict: no unknown fields), and the ConfigMap's
# timberline.toml served by the real binary until it is ready.
# Usage: bash .ci/deploy-lint.sh BIN
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$1"
hadolint docker/Dockerfile
check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml
kubernetes-validate --strict --quiet deploy/k8s/configmap.yaml deploy/k8s/secret.yaml \
  deploy/k8s/service.yaml deploy/k8s/statefulset.yaml
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
python3 - "$work/timberline.toml" <<'PY'
import sys, yaml
doc = yaml.safe_load(open("deploy/k8s/configmap.yaml"))
open(sys.argv[1], "w").write(doc["data"]["timberline.toml"])
PY
# The file's addresses and data directory, moved onto this machine's free ports and a scratch dir.
"$bin" serve --config "$work/timberline.toml" --data-dir "$work/data" --http-addr 127.0.0.1:0 \
  --pg-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --otlp-grpc-addr 127.0.0.1:0 >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 300); do
  grep -q '^timberline ready' "$work/out" && break
  kill -0 "$pid" 2>/dev/null || { echo "deploy lint: the ConfigMap's config does not start:"; cat "$work/err"; exit 1; }
  sleep 0.1
done
grep -q '^timberline ready' "$work/out" || { echo "deploy lint: no ready line"; exit 1; }
echo "deploy lint: Dockerfile, compose.yaml, k8s manifests and the ConfigMap's config ok"
