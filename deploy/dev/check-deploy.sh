#!/usr/bin/env bash
# Validates every deployment file without a container engine: the Compose
# file (docker-compose config), the Kubernetes manifests (kubernetes-validate
# --strict: unknown fields fail), the Dockerfile (hadolint) and the Prometheus
# configs (promtool; the rules' unit tests run in `make test`).
set -euo pipefail
cd "$(dirname "$0")/../.."
docker-compose -f deploy/compose/docker-compose.yml config -q
echo "compose: ok"
manifests=$(ls deploy/k8s/*.yaml | grep -v kustomization.yaml)
# shellcheck disable=SC2086
kubernetes-validate --strict --quiet $manifests
echo "kubernetes: ok ($(echo $manifests | wc -w) files)"
hadolint deploy/Dockerfile
echo "dockerfile: ok"
promtool check config --syntax-only deploy/prometheus/prometheus.yml >/dev/null
promtool check rules deploy/prometheus/alerts.yml >/dev/null
echo "prometheus: ok"
