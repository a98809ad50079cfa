# Two commands: `make demo` (whole workflow on the demo world) and `make test` (the test suite).
# Both create .venv on first use; it is rebuilt when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
# Idle OpenMP threads sleep instead of spinning: on shared cores spinning made torch steps up to 10x slower.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test claims rehearsal clean-results

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

# config/voc12.yaml end to end on a generated VOC-shaped stand-in with random stand-in weights (issue 16): every rule,
# the paper's architectures and batch sizes, one epoch each. REHEARSAL_SCALE of VOC's 10,582 / 1,464 / 1,449 images.
REHEARSAL ?= rehearsal
# 0.003 with at least 10 images a split: 32 / 10 / 10, one batch of IRN's 32 and of CCT's 10 pixel-labeled images.
REHEARSAL_SCALE ?= 0.003
REHEARSAL_MIN_IMAGES ?= 10
rehearsal: $(STAMP)
	test -d $(REHEARSAL)/data/VOCdevkit/VOC2012 || $(BIN)/python -m clims_core.data.voc_standin \
		--out $(REHEARSAL)/data/VOCdevkit/VOC2012 --scale $(REHEARSAL_SCALE) --min-images $(REHEARSAL_MIN_IMAGES)
	test -f $(REHEARSAL)/weights/resnet101-imagenet.pth || $(BIN)/python -m clims_core.models.standin_weights \
		--out $(REHEARSAL)/weights
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --cores $(CORES) --snakefile $(CURDIR)/workflow/Snakefile \
		--directory $(REHEARSAL) --configfile $(CURDIR)/config/voc12.yaml $(CURDIR)/config/rehearsal.yaml

clean-results:
	rm -rf results logs work .snakemake
