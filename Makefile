# mmradar — the README's two commands (`make demo`, `make test`) do all set-up themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test perf lint typecheck bench score run clean venv system-deps soak

venv: $(STAMP)

# The hot-path modules are compiled with mypyc (see setup.py): any change to them rebuilds.
COMPILED := $(shell sed -n 's/^    "\(service\/.*\.py\)",$$/\1/p' setup.py)

$(STAMP): pyproject.toml setup.py $(COMPILED)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	rm -rf build && find service -name '*.so' -delete
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mmradar demo

run: $(STAMP)
	$(BIN)/mmradar run $(if $(CONFIG),--config $(CONFIG),)

# The suite needs Prometheus, Alertmanager, promtool, amtool, dockerd and debootstrap; the first
# step installs what is missing (as root or with `sudo -n`) or stops with the one command to run.
test: system-deps $(STAMP) lint
	$(BIN)/pytest -q -ra

# The tests that assert wall-clock bounds (marked `perf`), left out of `make test`: run them on
# an otherwise idle machine.
perf: system-deps $(STAMP)
	$(BIN)/pytest -q -ra -m perf

system-deps:
	@bash .ci/install-system-deps

lint: $(STAMP)
	$(BIN)/ruff check service tests benchmarks
	$(BIN)/ruff format --check service tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_pipeline

# The soak: the service against every fake venue at 20x with faults, for MINUTES (default 60)
# minutes; RSS, descriptors, tasks and loop lag every minute (docs/reliability.md).
soak: $(STAMP)
	PYTHONPATH=tests $(BIN)/python -m soak --minutes $(or $(MINUTES),60) --out $(or $(OUT),soak-out)

# The full detection scorecard (evaluation seeds 1-10, every scenario, published-result checks).
score: $(STAMP)
	$(BIN)/mmradar score --validate --out scorecard

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
	find service -name '*.so' -delete
