# One-command set-up on a fresh Debian machine: `make demo` and `make test` install what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := ffmpeg pkg-config cmake g++ python3-venv \
	libavcodec-dev libavformat-dev libavfilter-dev libswscale-dev libswresample-dev libavutil-dev \
	libzimg-dev libfaketime
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ENGINE_SOURCES := $(wildcard cpp/*.cpp cpp/src/*.cpp cpp/include/framepress/*.h) CMakeLists.txt pyproject.toml

.PHONY: all demo test faults services system-deps build clean bench

all: build

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The package built from source (editable: Python edits apply at once, C++ edits rebuild here).
$(VENV)/.installed: $(VENV)/bin/python $(ENGINE_SOURCES) | system-deps
	$(PY) -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12"
	$(PY) -m pip install -q --no-build-isolation -e ".[test]"
	touch $@

build: system-deps $(VENV)/.installed

services:
	@bash scripts/ensure-services.sh

demo: build
	$(VENV)/bin/framepress demo

test: build services
	$(VENV)/bin/pytest -q

# Long fault-injection runs (services stopped for minutes, crashes), left out of `make test`.
faults: build services
	$(VENV)/bin/pytest -q -m faults

bench: build
	$(VENV)/bin/python bench/ladder.py

clean:
	rm -rf build $(VENV) *.egg-info
