# lvc — everything a fresh machine needs is installed from here.
# libtorch comes from the pinned PyPI torch wheel in a project-local .venv.

PYTHON ?= python3
TORCH_VERSION := 2.11.0
VENV := .venv
LIBTORCH := $(VENV)/libtorch
CARGO ?= cargo
LVC := target/release/lvc

.PHONY: all build test lint venv openblas demo tutorial clean-venv chromium bench-serve bench-fmt vendor-assets serve bench-import crosscheck-fillpoly bench-train bench-gemm bench-check fuzz

all: build

# The venv is created only if missing; the torch wheel is ~2.7 GB.
$(LIBTORCH):
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "$(TORCH_VERSION)")' 2>/dev/null \
	  || $(VENV)/bin/pip install --no-input --disable-pip-version-check torch==$(TORCH_VERSION)
	ln -sfn "$$($(VENV)/bin/python -c 'import torch, os; print(os.path.dirname(torch.__file__))')" $(LIBTORCH)

# CMake builds CharLS (JPEG-LS decoding in lvc-data); .cargo/config.toml points CMAKE here.
$(VENV)/bin/cmake: | $(LIBTORCH)
	$(VENV)/bin/pip install --no-input --disable-pip-version-check 'cmake>=3.20,<5'

# OpenBLAS for the CPU GEMMs of layers with their own backward (lvc-runtime's
# gemm/openblas.rs): scipy's build with 32-bit integers and `scipy_`-prefixed symbols,
# next to torch in the venv, where the build scripts find and link it.
OPENBLAS_VERSION := 0.3.34.481.3
openblas: | $(LIBTORCH)
	$(VENV)/bin/python -c 'import importlib.metadata as m, sys; sys.exit(m.version("scipy-openblas32") != "$(OPENBLAS_VERSION)")' 2>/dev/null \
	  || $(VENV)/bin/pip install --no-input --disable-pip-version-check scipy-openblas32==$(OPENBLAS_VERSION)

venv: $(LIBTORCH) $(VENV)/bin/cmake openblas

build: venv
	$(CARGO) build --release --locked --bins

# The formatter and the linter first (rustfmt.toml, clippy.toml and the
# workspace lints in Cargo.toml), then every test.
test: venv lint
	$(CARGO) test --release --locked --workspace

lint: venv
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Headless Chromium for the report rendering test (tests/cli_report.rs skips,
# saying so, where it is missing). Debian's package; apt-get needs root.
chromium:
	command -v chromium >/dev/null 2>&1 || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

clean-venv:
	rm -rf $(VENV)

# The main job on embedded default data: a phantom study in the Sunnybrook
# layout, imported with a patient split, the models checked in every stage,
# then the DIGITS workflow on the demo net: train (RUN = runs/demo:
# metrics.json, run.json, snapshots/, best.safetensors), evaluate
# (evaluation.json) and infer an overlay for every validation image
# (overlays/). The demo net trains in minutes on two CPU cores.
DEMO := runs/demo
DEMO_CASES ?= 16
demo: build
	rm -rf $(DEMO)
	$(LVC) phantom --out $(DEMO)/phantom --cases $(DEMO_CASES) --seed 1
	$(LVC) dataset create --images $(DEMO)/phantom/challenge_training \
	  --contours "$(DEMO)/phantom/Sunnybrook Cardiac MR Database ContoursPart3" \
	  --out $(DEMO)/dataset --seed 1 --val-pct 20 --force
	$(LVC) dataset inspect $(DEMO)/dataset
	for stage in train val deploy; do \
	  $(LVC) check --stage $$stage models/fcn_alexnet.prototxt models/fcn8s.prototxt models/demo.prototxt || exit 1; \
	done
	$(LVC) check --phase train models/demo.prototxt
	$(LVC) train --solver models/demo_solver.prototxt --dataset $(DEMO)/dataset --out $(DEMO)
	$(LVC) evaluate --run $(DEMO) --out $(DEMO)/evaluation.json
	$(LVC) infer --run $(DEMO) --all-val --out $(DEMO)/overlays
	$(LVC) report --run $(DEMO)

# The README's tutorial figures ("The tutorial, with lvc"): FCN-AlexNet from
# scratch, pretrained on an RGB phantom and fine-tuned (--adapt conv1=sum),
# Dice loss, FCN-8s and the demo net on a 3-patient phantom, one table
# (runs/tutorial/table.md). About 12 min on 2 idle CPU cores (37 min measured
# with the cores shared).
tutorial: build
	LVC=$(LVC) bash docs/tutorial/run.sh

# Import benchmark (not a test): `lvc dataset create` against the DIGITS path
# in Python (pydicom + cv2.fillPoly) on a 300-image phantom, one table.
BENCH_PY := $(VENV)/bin/python -c 'import numpy, cv2, pydicom' 2>/dev/null \
	  || $(VENV)/bin/pip install --no-input --disable-pip-version-check numpy opencv-python-headless pydicom
# lvc serve: its start, page renders with 200 runs, epoch latency and idle
# CPU, each against a floor measured in the same run (benches/serve/bench.py).
bench-serve: build
	python3 benches/serve/bench.py $(LVC)

# lvc fmt over the whole shared corpus against a process start and
# `lvc check` of the same files (benches/fmt/bench.py).
bench-fmt: build
	python3 benches/fmt/bench.py $(LVC)

# lvc serve's vendored assets (committed under server/assets/vendor, embedded
# in the binary): re-fetched from npm at the versions package-lock.json pins.
vendor-assets:
	cd server/assets && npm ci --no-audit --no-fund
	cp server/assets/node_modules/uplot/dist/uPlot.iife.min.js server/assets/node_modules/uplot/dist/uPlot.min.css server/assets/node_modules/uplot/LICENSE server/assets/vendor/uplot/
	rm -rf server/assets/node_modules

bench-import: build
	bash benches/import/run.sh 300

# The rasteriser against cv2.fillPoly on random polygons (Python, not a test).
crosscheck-fillpoly: build
	$(BENCH_PY)
	$(VENV)/bin/python benches/import/crosscheck_fillpoly.py $(LVC) --count 2000

# Training speed benchmark (not a test): lvc forward / forward-backward of
# FCN-AlexNet and FCN-8s (slim) at batch 1 and 4, against the sgemm floor
# measured in the same run and a PyTorch eager version of the same nets.
# BENCH_TRAIN_ARGS=--full-fcn8s adds the full VGG16 FCN-8s (slow).
# numpy for the OpenBLAS sgemm floor (benches/train/sgemm_floor.py); the torch
# wheel does not bring it.
NUMPY_VERSION := 2.3.5
bench-train: build
	$(VENV)/bin/python -c 'import numpy, sys; sys.exit(numpy.__version__ != "$(NUMPY_VERSION)")' 2>/dev/null \
	  || $(VENV)/bin/pip install --no-input --disable-pip-version-check numpy==$(NUMPY_VERSION)
	$(VENV)/bin/python benches/train/bench.py $(LVC) $(BENCH_TRAIN_ARGS)

# GEMM benchmark (not a test): fc6/fc7's products on libtorch's MKL, OpenBLAS
# and lvc's AVX2 kernels, side by side (runtime/benches/gemm.rs).
bench-gemm: venv
	$(CARGO) bench --locked -p lvc-runtime --bench gemm

# Check benchmark (not a test): compile (load + graph + shapes) of FCN-8s and
# of every corpus net, against parse-only and load-only in the same run; then
# files of 1k to 50k errors (compile, human rendering, JSON) against the old
# whole-text miette reader, measured in the same run.
bench-check: venv
	$(CARGO) bench --locked --bench check

# Fuzzing (not a test, not in CI's time): every reader of outside input
# (prototxt, npy, contour, manifest, DICOM, caffemodel, safetensors and
# solver states, run-folder JSON) under libFuzzer + AddressSanitizer for
# FUZZ_SECONDS each (default 600), JOBS at a time; a table of runs per
# target, exit 1 on any crash, hang (>10 s) or allocation over 2 GB.
# FUZZ_TARGETS="npy dicom" picks targets. Installs cargo-fuzz if missing.
fuzz: build
	bash fuzz/run.sh
