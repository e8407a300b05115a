# The project's entry points. `make run` and `make test` work on a fresh clone:
# every tool beyond the Rust toolchain is installed here, into .venv (git-ignored).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV         := .venv
CARGO_LAMBDA := $(VENV)/bin/cargo-lambda
# Pinned: a new cargo-lambda (and the zig it brings) must be a reviewed change.
CARGO_LAMBDA_VERSION := 1.9.2
# The function's CPU, as `stack.arch` in infra/app.yaml: arm64 (default) or
# x86_64. `deployer deploy` refuses a zip built for another one.
LAMBDA_ARCH ?= arm64
ifeq ($(LAMBDA_ARCH),arm64)
LAMBDA_TARGET := aarch64-unknown-linux-gnu
CARGO_LAMBDA_ARCH := --arm64
else ifeq ($(LAMBDA_ARCH),x86_64)
LAMBDA_TARGET := x86_64-unknown-linux-gnu
CARGO_LAMBDA_ARCH := --x86-64
else
$(error LAMBDA_ARCH is "$(LAMBDA_ARCH)": arm64 or x86_64, as stack.arch)
endif

TEST_TOOLS   := $(VENV)/.test-tools-installed
# cfn-lint and checkov in a venv of their own (see tools/requirements-lint.txt).
LINT_VENV    := $(VENV)/lint
LINT_TOOLS   := $(LINT_VENV)/.lint-tools-installed
# The committed template, and an example with every option and the pipeline on
# (the committed one's pipeline is off unless app.yaml configures it, and
# checkov skips resources whose condition is false).
TEMPLATES    := infra/template.yaml deployer/tests/data/template.yaml
# schemathesis in a venv of its own too (see tools/requirements-schemathesis.txt).
ST_VENV      := $(VENV)/schemathesis
ST_TOOLS     := $(ST_VENV)/.schemathesis-installed
# The client generators (`make clients`): openapi-python-client in a venv of
# its own (tools/requirements-clients.txt). Node tools, pinned in package.json
# and package-lock.json, in node_modules (git-ignored; `npm ci` installs
# exactly the locked tree): Redocly CLI (`make openapi-lint`), openapi-typescript,
# openapi-fetch and tsc (`make clients`).
CLIENTS_VENV  := $(VENV)/clients
CLIENTS_TOOLS := $(CLIENTS_VENV)/.clients-installed
NODE_TOOLS    := node_modules/.npm-ci-done
# The AWS CLI in a venv of its own, for `make bench` (tools/requirements-bench.txt).
AWSCLI_VENV  := $(VENV)/awscli
AWSCLI_TOOLS := $(AWSCLI_VENV)/.awscli-installed

.PHONY: help run run-aws test fmt clippy lint openapi-lint schemathesis clients unit emulator lambda bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

run: ## Serve the API on http://127.0.0.1:8000; dynamodb resources from the local store in data/
	cargo run --release -p api -- --config infra/app.yaml --dynamodb embedded

run-aws: ## Same, but dynamodb resources from DynamoDB (AWS_PROFILE, AWS_REGION, STACK_NAME)
	cargo run --release -p api -- --config infra/app.yaml --dynamodb aws

test: fmt clippy lint openapi-lint schemathesis clients unit ## Everything CI runs

fmt:
	cargo fmt --all -- --check

# The second run checks the api as the Lambda zip builds it, the third as the
# deployer and the benchmarks use it (no server).
clippy:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p api --no-default-features --features server -- -D warnings
	cargo clippy -p api --no-default-features -- -D warnings

# cfn-lint with every rule, informational ones included, must report nothing;
# checkov must fail nothing but the findings the template accepts in its
# resources' Metadata, each with a written reason. No network: --skip-download
# (no Prisma Cloud), and checkov's PyPI version check off. The snapshot test in
# deployer/tests/template.rs keeps both files equal to what `render` produces.
lint: $(LINT_TOOLS) ## Lint the rendered CloudFormation template (cfn-lint, checkov)
	$(LINT_VENV)/bin/cfn-lint --include-checks I -- $(TEMPLATES)
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true \
	  $(LINT_VENV)/bin/checkov --skip-download --framework cloudformation --quiet --compact -f $(TEMPLATES)

$(LINT_TOOLS): tools/requirements-lint.txt
	python3 -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet -r tools/requirements-lint.txt
	touch $@

# Redocly CLI's `recommended` rules on the document the local server serves
# (redocly.yaml), as declared and as with `stack.api_key: true` (the security
# scheme): any error fails. No network but loopback: tools/openapi-lint turns
# Redocly's usage data and update check off.
openapi-lint: $(NODE_TOOLS) ## Lint the served OpenAPI document (Redocly CLI)
	cargo build -p api
	tools/openapi-lint infra/app.yaml
	tools/openapi-lint --api-key infra/app.yaml

# schemathesis against the local server and its /openapi.json, all phases
# (stateful included) and checks (tools/schemathesis.toml): once as app.yaml
# declares it (users on the embedded store), once with every resource in
# memory. Bounded and seeded in tools/schemathesis-run.
schemathesis: $(ST_TOOLS) ## Test the local server against its OpenAPI document
	cargo build -p api
	tools/schemathesis-run infra/app.yaml
	tools/schemathesis-run --all-memory infra/app.yaml

$(ST_TOOLS): tools/requirements-schemathesis.txt
	python3 -m venv $(ST_VENV)
	$(ST_VENV)/bin/pip install --quiet -r tools/requirements-schemathesis.txt
	touch $@

# A Python and a TypeScript client generated from the local server's
# /openapi.json, each driven through a scripted round trip (tools/clients-run):
# create, read with its ETag and If-None-Match, update with If-Match (and a
# stale one), list page by page, delete, and error bodies as the document's
# Error. Generated code goes to target/clients/. No network but loopback.
clients: $(CLIENTS_TOOLS) $(NODE_TOOLS) ## Generate Python and TypeScript clients from /openapi.json and run a round trip through each
	cargo build -p api
	tools/with-api-server infra/app.yaml -- tools/clients-run

$(CLIENTS_TOOLS): tools/requirements-clients.txt
	python3 -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/pip install --quiet -r tools/requirements-clients.txt
	touch $@

# npm ci installs exactly package-lock.json, and fails if package.json
# disagrees with it; no package's install scripts run.
$(NODE_TOOLS): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --silent
	touch $@

# Unit and end-to-end tests, with the AWS emulator started on a free loopback port.
# cargo-lambda too: a test runs buildspec.yaml's build phase, which builds
# the Lambda with it.
unit: $(TEST_TOOLS) $(CARGO_LAMBDA)
	tools/with-emulator cargo test --workspace

emulator: $(TEST_TOOLS) ## Install the pinned AWS emulator (ministack) into .venv

$(TEST_TOOLS): tools/requirements-test.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -r tools/requirements-test.txt
	touch $@

lambda: $(CARGO_LAMBDA) ## Build the Lambda zip (LAMBDA_ARCH=arm64|x86_64) into target/lambda/api/bootstrap.zip
	rustup target list --installed | grep -qx $(LAMBDA_TARGET) || rustup target add $(LAMBDA_TARGET)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --profile lambda $(CARGO_LAMBDA_ARCH) --output-format zip -p api --no-default-features --features server --include infra/seed
	@ls -l target/lambda/api/bootstrap.zip

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

$(CARGO_LAMBDA): | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet cargo-lambda==$(CARGO_LAMBDA_VERSION)

# Measures and prints, never asserts; not part of `make test`. wrk and
# valgrind (callgrind's instruction counts) come from apt (as root), the AWS
# CLI from PyPI; without one of them, the figures that need it say so instead. The table is printed and written as JSON under
# bench-results/ (git-ignored). BENCH_LAMBDA=1 first builds the LAMBDA_ARCH zip
# (minutes); BENCH_ARGS passes options to the runner, e.g.
# BENCH_ARGS='--sections cold,load --rounds 1'.
bench: $(TEST_TOOLS) ## Measure cold start, load, instructions, memory, zip size, seeding, deploy (bench-results/)
	@command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null \
	  || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
	  || echo "bench: could not install wrk (apt-get install -y wrk, as root): no load figures" >&2
	@command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null \
	  || echo "bench: could not install valgrind (as root): no instruction counts" >&2
	@$(MAKE) --no-print-directory $(AWSCLI_TOOLS) \
	  || echo "bench: could not install the AWS CLI into $(AWSCLI_VENV): no CLI seeding figures" >&2
	@if [ "$${BENCH_LAMBDA:-0}" = 1 ]; then $(MAKE) --no-print-directory lambda; fi
	# api alone first: built with the deployer, cargo would unify their
	# features (aws-config's SSO) into it, and it would not be the Lambda's binary.
	cargo build --release -p api
	cargo build --release -p deployer -p bench
	tools/with-emulator target/release/bench --workspace "$(CURDIR)" $(BENCH_ARGS)

$(AWSCLI_TOOLS): tools/requirements-bench.txt
	python3 -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/pip install --quiet -r tools/requirements-bench.txt
	touch $@

clean: ## Remove build outputs, the tool venvs and node_modules
	cargo clean
	rm -rf $(VENV) node_modules
