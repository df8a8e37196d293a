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

$(STAMP): pyproject.toml requirements/no-deps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	$(PY) -m pip install -q --no-deps -r requirements/no-deps.txt
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

test: install proto-check
	$(PY) -m pytest -q

bench: install
	$(PY) -m bench.transport --out bench/results/transport.md
	$(PY) -m bench.envs --out bench/results/envs.md
	$(PY) -m bench.adapters --out bench/results/adapters.md

run: install
	$(PY) -m trainer.demo

serve: install
	$(PY) -m env_server serve --env $(or $(ENV),babyai) --port $(or $(PORT),50051) --metrics-port $(or $(METRICS_PORT),9100)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
