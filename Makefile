# Two commands: `make demo` (whole workflow on the demo world) and `make test` (the test suite).
# Both create .venv on first use; it is rebuilt when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
# Idle OpenMP threads sleep instead of spinning: on shared cores spinning made torch steps up to 10x slower.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test claims clean-results

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

# Two pytest-xdist workers of one thread each (tests/conftest.py THREADS): as fast as one 2-thread process on an idle
# 2-core machine, and far faster when another process loads it. `make test TEST_WORKERS=4` on bigger machines.
TEST_WORKERS ?= 2
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# DESIGN.md's claims on the finished demo run (tests/e2e/test_demo_claims.py; skipped in `make test`).
claims: $(STAMP)
	CLIMS_DEMO_RESULTS=results HF_HUB_OFFLINE=1 $(BIN)/python -m pytest tests/e2e/test_demo_claims.py

clean-results:
	rm -rf results logs work .snakemake
