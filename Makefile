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
	mkdir -p runs/demo
	$(VENV)/bin/glasses-sim video tests/assets/bikes.mp4 --headless --max-frames 120 \
		--keys "e@40:bike,m@60,q@110" --record runs/demo/hud.mp4 --report runs/demo

# The bundled default encoder: reproducible from the repo's own pipeline and data (deterministic on CPU).
models: setup
	$(PY) -m edge_models.train --preset vit_pico --data tests/assets/bikes_frames --steps 300 \
		--batch-size 16 --seed 0 --out runs/vit_pico --no-progress
	mkdir -p edge_models/weights
	cp runs/vit_pico/encoder.safetensors edge_models/weights/vit_pico.safetensors

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
