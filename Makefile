# Two commands do everything on a fresh Debian bookworm / Raspberry Pi OS machine:
#   make demo   broker + station receiver + the box on simulated hardware
#               (make demo DEMO_ARGS=--backup: a second broker, the box with a backup route)
#   make test   lint, types, architecture contracts and the whole test suite
# Both install what they need first (system packages, a virtual environment),
# idempotently: a second run only checks.
# (shellcheck lints image-build/ scripts; mmdebstrap builds the root file systems
# the image tests install the box into; qemu-user-static and arch-test let it build
# and run the arm64 one, the Pi's platform, under emulation.)

SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV ?= .venv
SYS_PACKAGES := python3 python3-venv mosquitto mosquitto-clients ffmpeg systemd chromium postgresql \
	shellcheck mmdebstrap qemu-user-static arch-test
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench setup sysdeps clean image lock

# Every shell script of the image recipe and the box (shellcheck in `make lint`).
SHELL_SCRIPTS := $(shell find image-build -type f \( -name '*.sh' -o -name config \) | sort)

demo: setup
	$(VENV)/bin/edge demo --config config/demo.toml $(DEMO_ARGS)

test: setup lint
	$(VENV)/bin/pytest

test-fast: setup lint
	$(VENV)/bin/pytest -m "not slow"

lint: setup
	$(VENV)/bin/ruff check edge tests image-build
	$(VENV)/bin/ruff format --check edge tests image-build
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	shellcheck $(SHELL_SCRIPTS)

# The SD-card image (Raspberry Pi OS Lite arm64 + the box), on a networked builder:
#   make image UPDATE_KEY=keys/vendor.pem FIRST_USER_PASS=...   (see image-build/README.md)
image:
	image-build/build-image.sh --update-key $(UPDATE_KEY) $(IMAGE_ARGS)

# image-build/box.lock and box-tests.lock from pyproject.toml's pins (asks PyPI); commit
# both. tests/unit/test_lock.py fails while they disagree with pyproject.toml.
lock: setup
	$(VENV)/bin/python image-build/lock.py

bench: setup
	$(VENV)/bin/python tests/bench/run.py $(ARGS)

setup: sysdeps $(STAMP)

sysdeps:
	@missing=$$(for p in $(SYS_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test,station]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .demo .mypy_cache .ruff_cache .pytest_cache build *.egg-info
