# glasses-runtime: one-command set-up, tests, demo and benchmarks.
# `make setup` is idempotent: apt packages (as root), a .venv, and `pip install -e .[dev]`.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
APT_PACKAGES := libportaudio2 libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libglu1-mesa libtk8.6 xvfb x11-apps

.PHONY: setup apt test test-slow demo bench bench-memory-1m models lint clean

setup: apt $(STAMP)

apt:
	@bash .ci/apt.sh $(APT_PACKAGES)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: setup
	$(PY) -m pytest -m "not slow" -q

test-slow: setup
	$(PY) -m pytest -m slow -q

demo: setup
	$(PY) -m edge_models.embed tests/assets/bikes.mp4 --reference-cuts 30,76,137,187,242
	$(VENV)/bin/glasses-sim demo --out runs/demo

# The shipped default models, reproducible from the repo's own pipeline and offline data (deterministic
# on CPU): the vit_pico encoder (JEPA on the bundled street frames) -> int8 XNNPACK .pte + manifest; a
# world model on its embeddings of MiniWorld exploration rollouts -> .pte + manifest. About 10 minutes.
WEIGHTS := edge_models/weights
models: setup
	$(PY) -m edge_models.train --preset vit_pico --data tests/assets/bikes_frames --steps 300 \
		--batch-size 16 --seed 0 --out runs/vit_pico --no-progress
	mkdir -p $(WEIGHTS)
	cp runs/vit_pico/encoder.safetensors $(WEIGHTS)/vit_pico.safetensors
	$(VENV)/bin/glasses-export lower $(WEIGHTS)/vit_pico.safetensors --quantize int8 \
		--calib tests/assets/bikes_frames --out $(WEIGHTS)
	$(PY) -m simulator.world.collect --episodes 160 --steps 100 --out runs/wm_data160 --seed 2000 \
		--size 96 --rows 2 --cols 2
	$(PY) -m edge_models.world_model.train --rollouts runs/wm_data160 \
		--encoder $(WEIGHTS)/vit_pico.safetensors --out runs/world_model --steps 3000
	cp runs/world_model/world_model.safetensors $(WEIGHTS)/world_model.safetensors
	$(VENV)/bin/glasses-export lower $(WEIGHTS)/world_model.safetensors --out $(WEIGHTS)

# The Arm Ethos-U NPU backend in its own venv (.venv-ethos): executorch[ethos-u] pins ml_dtypes 0.5.1,
# which onnx/onnxscript in .venv cannot use. `make ethos-u` lowers the shipped vit_pico to an int8
# Ethos-U55-128 .pte and prints vela's performance estimate (in the manifest's delegation.npu_estimate).
ETHOS_VENV  := .venv-ethos
ETHOS_STAMP := $(ETHOS_VENV)/.installed
.PHONY: ethos-u-setup ethos-u

ethos-u-setup: $(ETHOS_STAMP)

$(ETHOS_STAMP): export/ethos_u_requirements.txt pyproject.toml
	@test -x $(ETHOS_VENV)/bin/python || $(PYTHON) -m venv $(ETHOS_VENV)
	$(ETHOS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ETHOS_VENV)/bin/python -m pip install --quiet -r export/ethos_u_requirements.txt
	$(ETHOS_VENV)/bin/python -m pip install --quiet --no-deps -e .
	@touch $(ETHOS_STAMP)

ethos-u: ethos-u-setup
	$(ETHOS_VENV)/bin/glasses-export lower $(WEIGHTS)/vit_pico.safetensors --quantize int8 --backend ethos-u \
		--calib tests/assets/bikes_frames --out runs/ethos_u

# Benchmarks measure (ratios within one run) and write JSON to benchmarks/results/; run one at a time.
bench: setup
	$(PY) benchmarks/bench_encoder.py --out benchmarks/results
	$(PY) benchmarks/bench_memory.py --sizes 10000 100000
	$(PY) benchmarks/bench_runtime.py --seconds 10

# The memory at the issue's scale (1M keyframes; several minutes).
bench-memory-1m: setup
	$(PY) benchmarks/bench_memory.py --sizes 10000 100000 1000000

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
