# quizgate: every target is one line; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help run test lint fmt deps cluster cluster-stop smoke bench fuzz fuzz-smoke deploy-check api-check release

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: ## build and start one node, embedded (no Redis): ws://127.0.0.1:8080/ws, admin on :9090
	$(CARGO) build --release --locked -p quizgate && QUIZGATE_LOG_FORMAT=$${QUIZGATE_LOG_FORMAT:-text} ./target/release/quizgate

test: deps ## run the whole test suite (unit and integration, real processes; the JS client and the pages in Chromium)
	$(CARGO) test --workspace --locked
	$(CARGO) build --locked -p quizgate && cd web && npm ci --no-audit --no-fund --loglevel=error && npm test

lint: ## rustfmt check and clippy with warnings denied
	$(CARGO) fmt --all --check && $(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

cluster: deps ## start Redis (AOF), three nodes and HAProxy on loopback; LB at ws://127.0.0.1:7000/ws
	$(CARGO) build --release --locked -p quizgate && deploy/cluster/cluster.sh start

smoke: deps ## k6 smoke test (one whole quiz, 30 players) against a fresh local cluster of debug nodes
	$(CARGO) build --locked -p quizgate && loadtest/smoke.sh

deploy-check: deps ## validate the deployment files: Compose, Kubernetes (strict), the Dockerfile (hadolint), Prometheus
	deploy/dev/check-deploy.sh

api-check: deps ## schemathesis: docs/openapi.yaml against a live node
	$(CARGO) build --locked -p quizgate && deploy/dev/check-api.sh

release: ## build the release binary and say how to tag and build the image for this version
	$(CARGO) build --release --locked -p quizgate
	@v=$$(./target/release/quizgate --version | cut -d' ' -f2); \
	  echo "quizgate $$v: target/release/quizgate"; \
	  echo "next: move CHANGELOG.md's [Unreleased] to [$$v], git tag v$$v,"; \
	  echo "      docker build -f deploy/Dockerfile -t quizgate:$$v ."

fuzz: ## run each cargo-fuzz target for FUZZ_SECONDS (default 300; nightly Rust), growing fuzz/corpus
	FUZZ_GROW=1 FUZZ_SECONDS=$${FUZZ_SECONDS:-300} fuzz/run.sh

fuzz-smoke: ## run each fuzz target for 10 s (CI)
	FUZZ_SECONDS=10 fuzz/run.sh

bench: deps ## measure a local cluster (about 10 minutes) and write docs/benchmarks.md
	$(CARGO) build --release --locked -p quizgate -p quizgate-loadgen -p quizgate-floor && python3 loadtest/bench.py

cluster-stop: ## stop exactly what `make cluster` started
	deploy/cluster/cluster.sh stop

deps: ## install the system packages the tests need, if missing
	@deploy/dev/install-deps.sh
