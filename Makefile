# The verbs people type. Every target installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= server,trainer,dev
STAMP := $(VENV)/.installed
PROTO := proto/shiftgym/env/v1/env.proto
export GRPC_VERBOSITY ?= ERROR
# fast-downward-textworld's build calls plain `python`: let it find the venv's.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install proto proto-check test bench run serve clean

$(STAMP): pyproject.toml requirements/no-deps.txt requirements/trainer-no-deps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	$(PY) -m pip install -q --no-deps -r requirements/no-deps.txt -r requirements/trainer-no-deps.txt
	touch $@

install: $(STAMP)

# Regenerate the protocol code; committed, and tests/test_proto.py fails when it is stale.
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. $(PROTO)

# buf lint, and buf breaking against the proto on the main branch (when main has one).
proto-check: $(STAMP)
	cd proto && ../$(VENV)/bin/buf lint
	@if git cat-file -e main:proto/buf.yaml 2>/dev/null; then \
		cd proto && ../$(VENV)/bin/buf breaking --against '../.git#branch=main,subdir=proto' && echo "buf breaking: no breaking change against main"; \
	else echo "buf breaking: main has no proto yet, nothing to compare"; fi

test: install proto-check ops-tools
	$(PY) -m pytest -q

bench: install
	$(PY) -m bench.transport --out bench/results/transport.md
	$(PY) -m bench.envs --out bench/results/envs.md
	$(PY) -m bench.adapters --out bench/results/adapters.md
	$(PY) -m bench.warm_start --out bench/results/warm_start.md


.PHONY: load soak

# Thousands of concurrent episodes per env server, then more than its session limit (bench/results/load.md).
load: install
	$(PY) -m bench.load --out bench/results/load.md

# Steady load for MINUTES (default 30) with RSS and open sessions per env every minute (bench/results/soak.md).
soak: install
	$(PY) -m bench.soak --minutes $(or $(MINUTES),30) --out bench/results/soak.md

# The smoke grid (trainer/grid/presets.py) on a local env fleet (one server per env on loopback, stopped on exit,
# Ctrl-C included); resumes what RUN_DIR already holds. Prints where the report is.
run: install
	$(PY) -m trainer.cli grid run --preset $(or $(PRESET),smoke) --out $(or $(RUN_DIR),results/run)

serve: install
	$(PY) -m env_server serve --env $(or $(ENV),babyai) --port $(or $(PORT),50051) --metrics-port $(or $(METRICS_PORT),9100)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

.PHONY: ops-tools k8s-check deploy undeploy

# Prometheus and promtool for the monitoring tests (Debian's package); kubectl and kubernetes-validate come with
# the dev extra. Quick when they are there already.
ops-tools:
	@bash scripts/install-ops-tools.sh

# The generated k8s/ files are current, every overlay validates offline, and the ops tests pass.
k8s-check: install ops-tools
	$(PY) -m ops check
	$(PY) -m ops validate
	$(PY) -m pytest -q tests/ops

# Build and push the images, apply k8s/overlays/$(OVERLAY) and wait for the rollouts (scripts/deploy.sh says more):
#   make deploy REGISTRY=ghcr.io/acme/shiftgym OVERLAY=gpu-job [TAG=...] [NAMESPACE=shiftgym] [KUBECONTEXT=...]
deploy: install
	@REGISTRY="$(REGISTRY)" TAG="$(TAG)" OVERLAY="$(OVERLAY)" NAMESPACE="$(NAMESPACE)" KUBECONTEXT="$(KUBECONTEXT)" \
		bash scripts/deploy.sh deploy

undeploy: install
	@REGISTRY="$(REGISTRY)" TAG="$(TAG)" OVERLAY="$(OVERLAY)" NAMESPACE="$(NAMESPACE)" KUBECONTEXT="$(KUBECONTEXT)" \
		bash scripts/deploy.sh undeploy
