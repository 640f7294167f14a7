# glasses-runtime: one-command set-up, tests, demo and benchmarks.
# `make setup` is idempotent: apt packages (as root), a .venv, and `pip install -e .[dev]`.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
APT_PACKAGES := libportaudio2

.PHONY: setup apt test test-slow demo bench models lint clean

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
	$(PY) -m edge_models.embed tests/assets/bikes.mp4 --preset vit_pico

bench: setup
	$(PY) benchmarks/bench_encoder.py --out benchmarks/results

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
