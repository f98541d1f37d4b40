# dsd — two commands do everything on a fresh Debian 12 machine (as root):
#   make run    install system + Python dependencies, build, start the daemon in the foreground
#   make test   the same set-up, then the whole suite (Python with coverage, native under ASan/UBSan, fuzz smoke)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .build/stamps
BUILD := .build

# Debian packages: liburing for the io engine, libzstd for its Zstandard codec stage, fio as the benchmark baseline, glslang to compile
# the shaders, Mesa lavapipe as the CPU Vulkan driver CI tests on, clang for libFuzzer, systemd
# for `systemd-analyze verify`, valgrind for the native memcheck run.
APT_PACKAGES := build-essential pkg-config liburing-dev libzstd-dev fio glslang-tools spirv-tools \
	mesa-vulkan-drivers libvulkan1 vulkan-tools vulkan-validationlayers clang libclang-rt-14-dev systemd valgrind

.PHONY: all deps build run test test-python test-native bench clean

all: build

$(STAMPS)/apt:
	@mkdir -p $(STAMPS)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		missing=$$(dpkg-query -W -f='$${db:Status-Abbrev} $${Package}\n' $(APT_PACKAGES) 2>/dev/null | awk '$$1!="ii"{print $$2}'; \
			for p in $(APT_PACKAGES); do dpkg-query -W $$p >/dev/null 2>&1 || echo $$p; done); \
		if [ -n "$$missing" ]; then \
			echo "apt: installing $$missing"; \
			apt-get update -q; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
		fi; \
	else \
		echo "not root or no apt-get: assuming $(APT_PACKAGES) are installed"; \
	fi
	@touch $@

$(STAMPS)/venv: $(STAMPS)/apt pyproject.toml setup.py
	@mkdir -p $(STAMPS)
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

deps: $(STAMPS)/venv

# Rebuild the extension (and shaders) in place after C/GLSL edits; cheap when nothing changed.
build: deps
	$(PY) setup.py -q build_ext --inplace

run: build
	$(VENV)/bin/dsd serve

test: build test-native test-python

test-python: build
	rm -f .coverage .coverage.*
	# coverage's own .pth hook records subprocesses (the daemon, CLI runs) when this is set
	COVERAGE_PROCESS_START=$(CURDIR)/pyproject.toml COVERAGE_FILE=$(CURDIR)/.coverage \
		$(VENV)/bin/coverage run -m pytest -q -ra tests
	$(VENV)/bin/coverage combine -q
	$(VENV)/bin/coverage report --skip-covered --fail-under=80

# Native unit tests and fuzz smoke runs under ASan+UBSan (native/Makefile owns the details).
test-native: deps
	$(MAKE) -C native test

bench: build
	$(VENV)/bin/dsd bench all

clean:
	rm -rf $(BUILD) build dsd/*.so dsd/shaders/*.spv *.egg-info .coverage .coverage.* .pytest_cache
	$(MAKE) -C native clean
