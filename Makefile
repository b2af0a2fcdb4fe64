# make run   creates .venv, installs the app's packages and serves it on port 7860.
# make test  also installs the test packages and Debian's Chromium, checks the code with ruff, runs the whole suite.
# make test-fast  ruff and the unit tests alone (tests/unit/: no app over HTTP, no browser), to iterate with.
# make screenshots  the page at each state on a laptop, a phone and in dark mode, and issue 27's people features, into docs/screens/.
VENV   := .venv
PYTHON := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip --disable-pip-version-check -q
CHROMIUM := /usr/bin/chromium

.PHONY: run test test-fast lint install install-test chromium bench screenshots clean

run: install
	$(PYTHON) app.py

# Two workers, each taking whole files (module-scoped apps and browsers stay in one process): 14 minutes here;
# the slowest tests are listed at the end, to see where the time goes.
test: install-test chromium lint
	$(PYTHON) -m pytest -n 2 --dist loadfile --durations=15

test-fast: install-test lint
	$(PYTHON) -m pytest tests/unit

lint: install-test
	$(VENV)/bin/ruff check .

# The page tour's and the people features' screenshots (tests/browser/), written to docs/screens/ for the README.
screenshots: install-test chromium
	OUTWIT_SCREENSHOTS=docs $(PYTHON) -m pytest -q -p no:randomly tests/browser/test_page_tour.py tests/browser/test_people.py \
		tests/browser/test_seeing.py

bench: install
	$(PYTHON) -m bench.predict
	$(PYTHON) -m bench.train

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(PYTHON):
	python3 -m venv $(VENV)

# pip finds the pinned torch and torchvision wheels on the build machines' disk (see requirements.txt).
$(VENV)/.installed: requirements.txt requirements-attacks.txt | $(PYTHON)
	$(PIP) install -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(PIP) install --no-deps -r requirements-attacks.txt
	$(PYTHON) -c "import torch, torchvision, gradio, mlxtend, safetensors, scipy, torchattacks, matplotlib, pyarrow, captum"
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(PIP) install -r requirements-test.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(PYTHON) -c "import pytest, pytest_randomly, xdist, playwright, datasets, gradio_client, hypothesis"
	$(VENV)/bin/ruff --version >/dev/null
	touch $@

chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@test -x $(CHROMIUM)

clean:
	rm -rf $(VENV) .pytest_cache
