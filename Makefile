# `make demo` and `make test` set everything up on a fresh machine (Python >= 3.10 on PATH).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= dev,build,openvino,genai,onnxruntime,modelopt
STAMP  := $(VENV)/.fewstep-installed

.PHONY: install emulator demo test test-all lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU build of torch, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@$(MAKE) --no-print-directory emulator
	@bash tools/install_browser.sh
	touch $(STAMP)

# qemu-user >= 8 lets the gates (and tests) run bundles as an AVX2-only CPU would on any x86
# machine (`fewstep gate --isa avx2`). Best effort: without it those runs use oneDNN's cap or skip.
emulator:
	@bash tools/install_emulator.sh

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/fewstep run recipes/demo.yaml

test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -m "not slow" -q --durations=10

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf runs .pytest_cache .ruff_cache
