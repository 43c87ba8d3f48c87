# Each target builds its own virtual environment, so a fresh machine needs only python3 and gcc.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The demo's store; `rmqstore serve` keeps ./rmqstore-data, so the two never share one.
DATA ?= ./rmqstore-demo

.PHONY: run test bench serve clean system-packages

$(BIN)/.installed: pyproject.toml setup.py $(wildcard src/rmqstore/_native/*.[ch]) src/rmqstore/_native/build.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

# The tests also drive `rmqstore bench` against its peers and draw its plot: the bench extra.
$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

run: $(BIN)/.installed  ## install, then run the embedded demo on a local data directory
	$(BIN)/rmqstore demo --data $(DATA)

# Debian packages the tests use (browser, promtool): packaging/debian-packages.txt lists them.
system-packages:  ## apt-get install the missing ones (as root, or through sudo)
	sh packaging/install-debian-packages.sh

test: $(BIN)/.installed-test system-packages  ## install, lint, then run the whole test suite
	$(BIN)/ruff check src tests benches examples
	$(BIN)/python -m pytest -q -n 3 --dist loadgroup tests

bench: $(BIN)/.installed-test system-packages  ## micro-benchmarks of the hot paths and API calls
	cd benches && ../$(BIN)/python -m pytest -q . -p no:cacheprovider --benchmark-only --benchmark-columns=mean,ops,rounds --benchmark-sort=name

clean:
	rm -rf $(VENV) build $(wildcard src/rmqstore/*/*.so) $(DATA)
