# Two commands do all the set-up: `make demo` and `make test` (see README.md).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.graphopt-installed
DEMO_OUT ?= demo-out

.PHONY: demo test bench clean postgres-server

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (graphopt needs Python 3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(PY) -m graphopt.examples.demo --out $(DEMO_OUT)

# pytest exits 5 when it collects nothing: that is a failure here too.
test: $(STAMP) postgres-server
	$(PY) -m pytest -q -ra

# The tuner's storage tests start a throwaway PostgreSQL server: install its binaries when missing
# (apt-get, as root or with passwordless sudo; GRAPHOPT_TEST_NO_POSTGRES=1 skips those tests instead).
postgres-server:
	@.ci/install-postgres

bench: $(STAMP)
	$(PY) -m benchmarks.memory --json benchmarks/results/memory-latest.json

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
