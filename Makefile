# One-command set-up on a fresh Debian machine: `make demo` and `make test` install what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := ffmpeg pkg-config cmake g++ python3-venv \
	libavcodec-dev libavformat-dev libavfilter-dev libswscale-dev libswresample-dev libavutil-dev \
	libzimg-dev libfaketime
# The console's and the players' browser tests drive Debian's headless chromium through its
# chromedriver (hls.js and dash.js come from npm: scripts/install-players.sh).
TEST_PACKAGES := chromium chromium-driver
# libFuzzer comes with Debian's clang.
FUZZ_PACKAGES := clang libclang-rt-14-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ENGINE_SOURCES := $(wildcard cpp/*.cpp cpp/src/*.cpp cpp/include/framepress/*.h) CMakeLists.txt pyproject.toml
# The tests that exercise the engine's threads (rung workers, cancel, progress, the GIL).
THREAD_TESTS := tests/engine/test_control.py tests/engine/test_workers.py tests/engine/test_ladder.py
FUZZ_DIR := build/fuzz
FUZZ_SECONDS ?= 60

.PHONY: all demo test faults services system-deps test-deps fuzz-deps players build clean bench sanitize tsan fuzz

all: build

# $(call install-missing,PACKAGES): apt-get installs those of PACKAGES that are not installed.
define install-missing
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
endef

system-deps:
	$(call install-missing,$(APT_PACKAGES))

test-deps:
	$(call install-missing,$(TEST_PACKAGES))

fuzz-deps:
	$(call install-missing,$(FUZZ_PACKAGES))

players:
	@bash scripts/install-players.sh

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

# Most tests wait on services, worker processes and browsers rather than compute, so the suite
# runs on more processes than cores.
PYTEST_PROCESSES ?= 3

test: build services test-deps players
	$(VENV)/bin/pytest -q -n $(PYTEST_PROCESSES)

# Long fault-injection runs (services stopped for minutes, crashes), left out of `make test`.
faults: build services
	$(VENV)/bin/pytest -q -m faults -n $(PYTEST_PROCESSES)

bench: build
	$(VENV)/bin/python bench/ladder.py

# The engine built with AddressSanitizer + UndefinedBehaviorSanitizer (build/asan), running the
# engine tests; any report fails the run.
sanitize: build
	scripts/sanitized-tests.sh asan -q tests/engine

# The engine built with ThreadSanitizer (build/tsan), running the tests of its threads.
tsan: build
	scripts/sanitized-tests.sh tsan -q $(THREAD_TESTS)

# A coverage-guided fuzzer (libFuzzer, ASan, UBSan) over probe and a small transcode of an input
# held in memory, from a generated seed corpus; FUZZ_SECONDS=N runs it longer. It runs the whole
# time whatever it finds (a forked child per input batch), leaves each finding in build/fuzz/findings/
# (reproduce: build/fuzz/transcode_fuzzer FILE) and fails if there is any.
$(FUZZ_DIR)/transcode_fuzzer: cpp/fuzz/transcode_fuzzer.cpp $(ENGINE_SOURCES) | fuzz-deps system-deps
	mkdir -p $(FUZZ_DIR)
	clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-Icpp/include $$(pkg-config --cflags libavformat libavcodec libavfilter libswscale libswresample libavutil zimg) \
		cpp/fuzz/transcode_fuzzer.cpp cpp/src/*.cpp -o $@ \
		$$(pkg-config --libs libavformat libavcodec libavfilter libswscale libswresample libavutil zimg) -lpthread

fuzz: $(FUZZ_DIR)/transcode_fuzzer
	rm -rf $(FUZZ_DIR)/seeds
	cpp/fuzz/make_seeds.sh $(FUZZ_DIR)/seeds
	mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/findings
	$(FUZZ_DIR)/transcode_fuzzer -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
		-max_total_time=$(FUZZ_SECONDS) -timeout=30 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/findings/ $(FUZZ_DIR)/corpus $(FUZZ_DIR)/seeds
	@found=$$(ls $(FUZZ_DIR)/findings | wc -l); echo "fuzz: $$found finding(s) in $(FUZZ_DIR)/findings"; [ "$$found" = 0 ]

clean:
	rm -rf build $(VENV) *.egg-info
