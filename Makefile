# Keras -> TensorFlow Serving / ONNX bundle. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
export CUDA_VISIBLE_DEVICES ?=
export PYTHONUNBUFFERED := 1

MODELS_DIR ?= models
NAME ?=
MODEL ?=
VERSION ?=
CUSTOM ?=
SAMPLE ?=
UNSAFE ?=
FORCE ?=
OPSET ?= 17
RTOL ?=
ATOL ?=
REQUIRE_ONNX ?=
SKIP_ONNX ?=
INPUT_NAMES ?=
OUTPUT_NAMES ?=
ALLOW_SIGNATURE_CHANGE ?=
DESCRIPTION ?=
TAGS ?=
SERVER ?=
LABEL ?=
KEEP ?=
DRY_RUN ?=
PORT ?= 8500
REST_PORT ?= 8501
POLL ?= 2
TARGET ?= localhost:$(PORT)
PROTOCOL ?= grpc
INPUT ?=
PREFIX ?=
PYTEST_ARGS ?=
CONCURRENCY ?= 1,8,32
BATCH ?=
OUT ?=
QUICK ?=
BENCH_ARGS ?=
PEERS_VENV ?= build/peers-venv
CANARY_S ?= 30
MAX_P99_RATIO ?= 1.5
MAX_ERROR_RATE ?= 0

_opt = $(if $(2),$(1) $(2))
_flag = $(if $(filter 1 yes true,$(2)),$(1))

.PHONY: _loadgens help install demo test check export parity serve config promote rollback rollout prune versions history client \
        bench bench-peers perf soak fuzz test-zoo docker-build docker-up docker-down k8s-validate clean

help: ## List every target with one line each
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

install: $(VENV)/.installed ## Create .venv with the pinned packages (idempotent)

demo: install ## Train the digits MLP, export + parity, serve, call it over REST and gRPC, then roll out a retrained version 2
	$(PY) -m export.examples.demo --models-dir $(or $(DEMO_MODELS_DIR),build/demo-models)

test: install ## Run the test suite (everything but the long soak/fuzz/zoo runs; the zoo's fast subset is in)
	$(PY) -m pytest -q -n 2 --dist loadgroup $(PYTEST_ARGS)

check: install ## Lint (ruff)
	$(PY) -m ruff check export serving clients tests

export: install ## Export MODEL (file, SavedModel dir or module:function) as a new version of NAME under MODELS_DIR
	@test -n "$(MODEL)" -a -n "$(NAME)" || { echo "usage: make export MODEL=<path|module:function> NAME=<name> [MODELS_DIR=models] [VERSION=n] [CUSTOM=mod.py] [SAMPLE=x.npz] [UNSAFE=1] [FORCE=1] [OPSET=17] [RTOL=] [ATOL=] [REQUIRE_ONNX=1|SKIP_ONNX=1] [INPUT_NAMES=old=new,..] [OUTPUT_NAMES=old=new,..] [ALLOW_SIGNATURE_CHANGE=1] [DESCRIPTION=text] [TAGS=a,b]"; exit 2; }
	$(PY) -m export "$(MODEL)" --name "$(NAME)" --models-dir "$(MODELS_DIR)" $(call _opt,--version,$(VERSION)) \
	  $(call _opt,--custom,$(CUSTOM)) $(call _opt,--sample,$(SAMPLE)) $(call _flag,--unsafe,$(UNSAFE)) \
	  $(call _flag,--force,$(FORCE)) --opset $(OPSET) $(call _opt,--rtol,$(RTOL)) $(call _opt,--atol,$(ATOL)) \
	  $(call _flag,--require-onnx,$(REQUIRE_ONNX)) $(call _flag,--skip-onnx,$(SKIP_ONNX)) \
	  $(call _opt,--input-names,$(INPUT_NAMES)) $(call _opt,--output-names,$(OUTPUT_NAMES)) \
	  $(call _flag,--allow-signature-change,$(ALLOW_SIGNATURE_CHANGE)) \
	  $(if $(DESCRIPTION),--description '$(subst ','\'',$(DESCRIPTION))') $(call _opt,--tags,$(TAGS))

parity: install ## Re-run the parity proof on NAME [VERSION] (add SERVER=host:grpc,host:rest for the live server)
	@test -n "$(NAME)" || { echo "usage: make parity NAME=<name> [VERSION=n] [MODELS_DIR=models] [SERVER=host:8500,host:8501]"; exit 2; }
	$(PY) -m export.parity --name "$(NAME)" --models-dir "$(MODELS_DIR)" $(call _opt,--version,$(VERSION)) \
	  $(call _opt,--custom,$(CUSTOM)) $(call _opt,--server,$(SERVER)) $(call _opt,--rtol,$(RTOL)) $(call _opt,--atol,$(ATOL))

serve: install ## Serve MODELS_DIR/models.config with the local drop-in server (gRPC PORT, REST REST_PORT)
	@test -f "$(MODELS_DIR)/models.config" || { echo "error: $(MODELS_DIR)/models.config does not exist: run \`make config MODELS_DIR=$(MODELS_DIR)\` first (after \`make export\`)"; exit 2; }
	$(PY) -m serving --port=$(PORT) --rest_api_port=$(REST_PORT) \
	  --model_config_file=$(abspath $(MODELS_DIR))/models.config \
	  --model_config_file_poll_wait_seconds=$(POLL) --file_system_poll_wait_seconds=$(POLL)

config: install ## Write MODELS_DIR/models.config (+ batching/monitoring configs; PREFIX=/models for containers, SSL_CERT= SSL_KEY= [SSL_CA=] for ssl.config)
	$(PY) -m serving.admin config --models-dir "$(MODELS_DIR)" $(call _opt,--prefix,$(PREFIX)) \
	  $(call _opt,--ssl-cert,$(SSL_CERT)) $(call _opt,--ssl-key,$(SSL_KEY)) $(call _opt,--ssl-ca,$(SSL_CA)) \
	  $(call _flag,--ssl-client-verify,$(SSL_CLIENT_VERIFY))

promote: install ## Point LABEL (stable|canary) of NAME at VERSION in models.config; waits for the load when a server serves NAME on REST_PORT (or WAIT_FOR=host:port)
	$(PY) -m serving.admin promote --models-dir "$(MODELS_DIR)" --name "$(NAME)" --version "$(VERSION)" --label "$(LABEL)" \
	  $(call _flag,--force,$(FORCE)) $(call _opt,--wait-for,$(WAIT_FOR)) --server localhost:$(REST_PORT)

rollback: install ## Move NAME's stable label back to the previous stable version
	$(PY) -m serving.admin rollback --models-dir "$(MODELS_DIR)" --name "$(NAME)"

rollout: install ## Canary NAME's VERSION (default newest) on SERVER=host:grpc,host:rest, verify it live, promote or roll back
	@test -n "$(NAME)" -a -n "$(SERVER)" || { echo "usage: make rollout NAME=<name> SERVER=host:grpcport,host:restport [VERSION=n] [MODELS_DIR=models] [CANARY_S=30] [MAX_P99_RATIO=1.5] [MAX_ERROR_RATE=0]"; exit 2; }
	$(PY) -m serving.admin rollout --models-dir "$(MODELS_DIR)" --name "$(NAME)" --server "$(SERVER)" \
	  $(call _opt,--version,$(VERSION)) --canary-s $(CANARY_S) --max-p99-ratio $(MAX_P99_RATIO) \
	  --max-error-rate $(MAX_ERROR_RATE)

prune: install ## Delete all but the newest KEEP versions of NAME (never a labelled one); DRY_RUN=1 only says what
	$(PY) -m serving.admin prune --models-dir "$(MODELS_DIR)" --name "$(NAME)" --keep "$(KEEP)" $(call _flag,--dry-run,$(DRY_RUN))

versions: install ## Table of the versions of NAME (every model without NAME): created, labels, parity, ONNX, sizes, tags
	$(PY) -m serving.admin versions --models-dir "$(MODELS_DIR)" $(call _opt,--name,$(NAME))

history: install ## NAME's label moves (promote, rollback, rollout) from .labels.json: when, who, from -> to
	@test -n "$(NAME)" || { echo "usage: make history NAME=<name> [MODELS_DIR=models]"; exit 2; }
	$(PY) -m serving.admin history --models-dir "$(MODELS_DIR)" --name "$(NAME)"

client: install ## Call the local server: make client NAME=... INPUT=x.npy|x.npz|x.json [PROTOCOL=grpc|rest] [TARGET=host:port]
	@test -n "$(NAME)" -a -n "$(INPUT)" || { echo "usage: make client NAME=<model> INPUT=<x.npy|x.npz|x.json> [PROTOCOL=grpc|rest] [TARGET=host:port] [VERSION=n|LABEL=l]"; exit 2; }
	$(PY) -m clients predict --protocol $(PROTOCOL) --model "$(NAME)" --input "$(INPUT)" \
	  --target $(if $(filter rest,$(PROTOCOL)),$(patsubst %:$(PORT),%:$(REST_PORT),$(TARGET)),$(TARGET)) \
	  $(call _opt,--version,$(VERSION)) $(call _opt,--label,$(LABEL))

bench: install ## Benchmark: concurrency sweep over gRPC/REST, TF/ORT backends, batching on/off (writes docs/perf/)
	$(PY) -m serving.bench --out docs/perf $(BENCH_ARGS)

bench-peers: install $(PEERS_VENV)/kserve/.installed $(PEERS_VENV)/mlserver/.installed _loadgens ## Ours vs KServe, MLServer and Python floors, wrk + h2load, issue 11 goals (QUICK=1: smoke run into build/; not in CI)
	PEERS_VENV=$(PEERS_VENV) $(PY) -m serving.bench.peers $(call _flag,--quick,$(QUICK)) $(call _opt,--out,$(OUT)) $(BENCH_ARGS)

$(PEERS_VENV)/%/.installed: serving/bench/peers/requirements-%.txt
	@test -x $(PEERS_VENV)/$*/bin/python || $(PYTHON) -m venv $(PEERS_VENV)/$*
	$(PEERS_VENV)/$*/bin/python -m pip install -q -r $<
	@touch $@

_loadgens: # wrk (HTTP) and h2load (gRPC), installed with apt-get when missing; a clear error when they cannot be
	@for tool in wrk h2load; do \
	  case $$tool in wrk) pkg=wrk brew=wrk what="the HTTP load generator";; \
	    h2load) pkg=nghttp2-client brew=nghttp2 what="the gRPC load generator, from nghttp2";; esac; \
	  command -v $$tool >/dev/null && continue; \
	  echo "$$tool not found: installing $$pkg with apt-get"; \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$pkg; \
	    elif command -v sudo >/dev/null; then sudo -n apt-get update -qq && sudo -n apt-get install -y -qq $$pkg; fi; } \
	    >/dev/null 2>&1 || true; \
	  command -v $$tool >/dev/null || { echo "error: make bench-peers needs $$tool ($$what) and could not install it; install it yourself: apt-get install -y $$pkg (Debian/Ubuntu), brew install $$brew (macOS)" >&2; exit 1; }; \
	done

perf: install ## perf_analyzer for any model: make perf NAME=... INPUT=x.npy|x.npz [PROTOCOL=grpc|rest] [TARGET=host:port] [VERSION=n|LABEL=l] [BATCH=b] [CONCURRENCY=1,8,32]
	@test -n "$(NAME)" -a -n "$(INPUT)" || { echo "usage: make perf NAME=<model> INPUT=<x.npy|x.npz> [PROTOCOL=grpc|rest] [TARGET=host:port] [VERSION=n|LABEL=l] [BATCH=b] [CONCURRENCY=1,8,32] [OUT=build/perf]"; exit 2; }
	$(PY) -m serving.bench --protocol $(PROTOCOL) --model "$(NAME)" --input "$(INPUT)" --concurrency $(CONCURRENCY) \
	  --target $(if $(filter rest,$(PROTOCOL)),$(patsubst %:$(PORT),%:$(REST_PORT),$(TARGET)),$(TARGET)) \
	  $(call _opt,--version,$(VERSION)) $(call _opt,--label,$(LABEL)) $(call _opt,--batch-size,$(BATCH)) \
	  $(call _opt,--out,$(OUT)) $(BENCH_ARGS)

soak: install ## Long zero-downtime rollout under load (not in CI)
	$(PY) -m pytest -q -m soak tests

fuzz: install ## Long property-based fuzz of the REST JSON and TensorProto decoders (not in CI)
	$(PY) -m pytest -q -m fuzz tests

test-zoo: install ## Export + serve the whole model zoo (14 models: applications, Transformer, text, lookups; ~4 min on 2 idle cores)
	$(PY) -m pytest -q -m "" -s tests/export/test_zoo.py $(PYTEST_ARGS)

docker-build: ## Build the TF Serving image with models/ baked in (run `make config PREFIX=/models` first; needs Docker)
	docker build -f docker/Dockerfile -t keras-serving-bundle:0.1.0 .

docker-up: ## Start TF Serving with docker compose, models/ mounted read-only (needs Docker)
	docker compose -f docker/docker-compose.yml up -d

docker-down: ## Stop the compose services (needs Docker)
	docker compose -f docker/docker-compose.yml down

k8s-validate: install ## Validate docker/k8s manifests against the Kubernetes schemas (no cluster needed)
	$(PY) -m pytest -q tests/deploy -k "k8s or kserve"

clean: ## Remove build outputs (keeps .venv and models/)
	rm -rf build .pytest_cache .ruff_cache .hypothesis
