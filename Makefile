# Two commands for a newcomer: `make lab` to read and run the lesson, `make test` to check it.
# Both build .venv from requirements.txt when it is missing or older than requirements.txt.

PYTHON ?= python3
VENV := .venv
ifeq ($(OS),Windows_NT)
BIN := $(VENV)/Scripts
else
BIN := $(VENV)/bin
endif
READY := $(VENV)/.ready

.PHONY: lab test execute retarget benchmark format clean

lab: $(READY)
	$(BIN)/jupyter lab notebooks/

test: $(READY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# Re-run every notebook top to bottom in a fresh kernel and store its outputs.
execute: $(READY)
	$(BIN)/ruff format notebooks
	$(BIN)/python tools/navigation.py
	$(BIN)/python tools/execute.py

# Point every badge, Colab fetch URL and clone command at a fork: make retarget REPO=owner/name
retarget: $(READY)
	@test -n "$(REPO)" || { echo "usage: make retarget REPO=owner/name [BRANCH=main]"; exit 2; }
	$(BIN)/python tools/navigation.py --retarget "$(REPO)" $(if $(BRANCH),--branch "$(BRANCH)")

# Time the suite against the budgets in ENGINEERING.md (floor, per notebook, whole run).
benchmark: $(READY)
	$(BIN)/python tools/benchmark.py

format: $(READY)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(READY): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	@# The first matplotlib import builds a font cache and says so on stderr; do it here,
	@# not in the first notebook, where the notice would fail strict nbval.
	MPLBACKEND=Agg $(BIN)/python -c "import matplotlib.pyplot"
	@touch $(READY)

clean:
	rm -rf $(VENV)
