# glasses-runtime: one-command set-up, tests, demo and benchmarks.
# `make setup` is idempotent: apt packages (as root), a .venv, and `pip install -e .[dev]`.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
APT_PACKAGES := libportaudio2 libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libglu1-mesa libtk8.6 xvfb x11-apps

.PHONY: setup apt test test-slow demo bench bench-memory-1m lint clean

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
# on CPU; docs/encoder.md and edge_models/weights/MODEL_CARD.md say what and why):
#  1. the default encoder, vit_tiny at 128 px, distilled from EfficientNet-Lite0 on a mixture of real
#     photos, the street clip, MiniWorld renders and Fashion-MNIST -> float16 checkpoint -> int8 XNNPACK
#     .pte with two outputs (embedding, tokens) + manifest (about 60 minutes on 2 cores);
#  2. the planner's world model on its embeddings of MiniWorld exploration rollouts -> .pte + manifest;
#  3. the token world model on its reduced token grids of MiniWorld rollouts (a walk that backs up
#     often) -> one fully delegated planner-step .pte + manifest (about 8 minutes on 2 cores);
#  4. `make models-pico`: the old vit_pico (tests and the quality benchmark's baseline).
WEIGHTS := edge_models/weights
MODEL_DATA_APT := dataset-fashion-mnist gnome-backgrounds plasma-workspace-wallpapers
ENCODER_DATA := photos:train*2+video:tests/assets/bikes.mp4+rollouts:runs/mw_enc22*2+rollouts:runs/mw_enc33+fashion-mnist*2
.PHONY: models models-encoder models-world-model models-token-world-model models-pico models-data

models-data:
	@bash .ci/apt.sh $(MODEL_DATA_APT)

models: models-encoder models-world-model models-token-world-model

models-encoder: setup models-data
	$(PY) -m simulator.world.collect --episodes 80 --steps 100 --out runs/mw_enc22 --seed 5000 --size 128 \
		--rows 2 --cols 2 --overwrite
	$(PY) -m simulator.world.collect --episodes 60 --steps 100 --out runs/mw_enc33 --seed 6000 --size 128 \
		--rows 3 --cols 3 --overwrite
	$(VENV)/bin/glasses-export distill --teacher efficientnet-lite0 --student vit_tiny --data "$(ENCODER_DATA)" \
		--img-size 128 --teacher-size 256 --steps 700 --batch-size 64 --lr 1e-3 --seed 0 \
		--dense-weight 1.0 --relation-weight 1.0 --vicreg-weight 0.05 --no-progress --out runs/enc_tiny128
	$(PY) -m edge_models.distill.whitening runs/enc_tiny128/encoder.safetensors \
		runs/enc_tiny128/encoder_whitened.safetensors --data "$(ENCODER_DATA)" --samples 2048 --shrink 1e-3
	mkdir -p $(WEIGHTS)
	$(PY) -m edge_models.checkpoint --half runs/enc_tiny128/encoder_whitened.safetensors $(WEIGHTS)/vit_tiny.safetensors
	cp runs/enc_tiny128/metrics.jsonl $(WEIGHTS)/vit_tiny.metrics.jsonl
	rm -rf runs/calib_default
	$(PY) benchmarks/make_calibration_set.py --out runs/calib_default --rollouts runs/mw_enc33 --photos \
		--per-source 12 --size 128
	$(VENV)/bin/glasses-export lower $(WEIGHTS)/vit_tiny.safetensors --quantize int8 \
		--calib runs/calib_default --out $(WEIGHTS)

models-world-model: setup
	$(PY) -m simulator.world.collect --episodes 160 --steps 100 --out runs/wm_data160_128 --seed 2000 \
		--size 128 --rows 2 --cols 2 --overwrite
	$(PY) -m edge_models.world_model.train --rollouts runs/wm_data160_128 \
		--encoder $(WEIGHTS)/vit_tiny.safetensors --out runs/world_model --steps 3000
	cp runs/world_model/world_model.safetensors $(WEIGHTS)/world_model.safetensors
	$(VENV)/bin/glasses-export lower $(WEIGHTS)/world_model.safetensors --out $(WEIGHTS)

models-token-world-model: setup
	$(PY) -m simulator.world.collect --episodes 160 --steps 100 --out runs/twm_data --seed 3000 \
		--size 128 --rows 2 --cols 2 --policy balanced --overwrite
	$(PY) -m edge_models.world_model.train_tokens --rollouts runs/twm_data \
		--encoder $(WEIGHTS)/vit_tiny.safetensors --out runs/token_world_model --steps 4000 --threads 2 --no-progress
	cp runs/token_world_model/token_world_model.safetensors $(WEIGHTS)/token_world_model.safetensors
	$(VENV)/bin/glasses-export lower $(WEIGHTS)/token_world_model.safetensors --out $(WEIGHTS)
	$(VENV)/bin/glasses-export lower $(WEIGHTS)/token_world_model.safetensors --samples 4 --horizon 1 --out $(WEIGHTS)

models-pico: setup
	$(PY) -m edge_models.train --preset vit_pico --data tests/assets/bikes_frames --steps 300 \
		--batch-size 16 --seed 0 --out runs/vit_pico --no-progress
	mkdir -p $(WEIGHTS)
	cp runs/vit_pico/encoder.safetensors $(WEIGHTS)/vit_pico.safetensors
	$(VENV)/bin/glasses-export lower $(WEIGHTS)/vit_pico.safetensors --quantize int8 \
		--calib tests/assets/bikes_frames --no-tokens --out $(WEIGHTS)

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
	$(ETHOS_VENV)/bin/glasses-export lower $(WEIGHTS)/vit_pico.safetensors --quantize int8 --backend ethos-u --no-tokens \
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
