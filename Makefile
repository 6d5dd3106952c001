# Two commands for a newcomer: `make lab` to read and run the lesson, `make test` to check it.
# Both build .venv from requirements.txt when it is missing or older than requirements.txt.
# On Linux, torch is the CPU build by default; `make lab TORCH=cuda` installs PyPI's CUDA build.

PYTHON ?= python3
TORCH ?= cpu
VENV := .venv
ifeq ($(OS),Windows_NT)
BIN := $(VENV)/Scripts
else
BIN := $(VENV)/bin
endif
READY := $(VENV)/.ready

.PHONY: lab test execute check-outputs retarget benchmark format clean

# Jupyter refuses to start as root unless told; as root (Docker, devcontainers, cloud notebooks) allow it.
AS_ROOT := $(filter 0,$(shell id -u 2>/dev/null))
ROOT_NOTE := make lab: running as root (a container?), so JupyterLab starts with --allow-root
# JupyterLab opens on the first notebook, with the notebooks folder (and nothing else) in its file browser.
FIRST := $(notdir $(firstword $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))))
LAB_NOTE := make lab: opening $(FIRST); the other notebooks are in the file browser on the left, in order

lab: $(READY)
	@$(if $(AS_ROOT),echo "$(ROOT_NOTE)")
	@echo "$(LAB_NOTE)"
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks --LabApp.default_url=/lab/tree/$(FIRST) $(if $(AS_ROOT),--allow-root)

test: $(READY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# Re-run every notebook top to bottom in a fresh kernel and store its outputs.
execute: $(READY)
	$(BIN)/ruff format notebooks
	$(BIN)/python tools/navigation.py
	$(BIN)/python tools/execute.py

# Run copies of the notebooks in a folder elsewhere and fail if any stored output differs.
check-outputs: $(READY)
	$(BIN)/python tools/execute.py --check

# Point every badge, Colab fetch URL and clone command at a fork: make retarget REPO=owner/name
retarget: $(READY)
	@test -n "$(REPO)" || { echo "usage: make retarget REPO=owner/name [BRANCH=main]"; exit 2; }
	$(BIN)/python tools/navigation.py --retarget "$(REPO)" $(if $(BRANCH),--branch "$(BRANCH)")

# Time the suite against the budgets in CONTRIBUTING.md (floor, per notebook, whole run).
benchmark: $(READY)
	$(BIN)/python tools/benchmark.py

format: $(READY)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(READY): requirements.txt
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python tools/install.py --torch $(TORCH)
	@touch $(READY)

clean:
	rm -rf $(VENV)
