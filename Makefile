# Entry points for a fresh Debian 12 machine (run as root).
#   make demo   install what is needed, then run the lab demo
#   make test   install what is needed, then run the test suite
PYTHON ?= /usr/bin/python3
export PATH := /usr/sbin:/usr/bin:/sbin:/bin:$(PATH)
export PYTHONPATH := $(CURDIR)/agent

DEB_PACKAGES = zookeeper default-jre-headless python3-kazoo python3-oslo.config \
	python3-os-ken python3-ovsdbapp openvswitch-switch python3-pytest \
	python3-venv python3-pip iproute2 procps ethtool busybox iputils-ping \
	tcpdump

.PHONY: deps test test-unit demo bench clean

deps:
	@if ! dpkg -s $(DEB_PACKAGES) >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends $(DEB_PACKAGES); fi

test: deps
	$(PYTHON) -m pytest -ra tests

test-unit:
	$(PYTHON) -m pytest -ra tests/unit

demo: deps
	$(PYTHON) -m dragonflow.lab.cli demo $(DEMO_ARGS)

bench: deps
	$(PYTHON) bench/nb_bench.py

clean:
	rm -rf build dist .pytest_cache
