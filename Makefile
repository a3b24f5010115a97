# The two commands of the README: `make run` (the service on the embedded SQLite default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-runtime run scan test test-fast lint bench soak clean

# Two stamps: `run` and `scan` need only the service's own dependencies; `test`, `lint` and `bench` add the
# development extras (pytest, ruff, mypy, schemathesis, selenium) on top.
$(BIN)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(BIN)/.installed: $(BIN)/.runtime
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install-runtime: $(BIN)/.runtime

install: $(BIN)/.installed

run: install-runtime
	$(BIN)/scanguard serve $(ARGS)

scan: install-runtime
	$(BIN)/scanguard scan $(ARGS)

test: install
	$(BIN)/python -m pytest $(ARGS)

# the edit-test loop: the unit and integration tiers on SQLite only, four workers at once (under a minute:
# the tier waits on scans more than it computes); `make test` is the suite, one test at a time
test-fast: install
	$(BIN)/python -m pytest tests/unit tests/integration -m "not postgres and not slow" -q -n 4 $(ARGS)

lint: install
	$(BIN)/ruff check scanguard tests bench
	$(BIN)/ruff format --check scanguard tests bench
	$(BIN)/mypy

# the chaos soak alone, longer: make soak SOAK_SECONDS=600 (SCANGUARD_SOAK_SEED=N replays a run)
SOAK_SECONDS ?= 600
soak: install
	SCANGUARD_SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m pytest tests/chaos -s $(ARGS)

bench: install
	$(BIN)/python bench/scan.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache test-output
