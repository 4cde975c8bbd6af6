# Entry points for a fresh Debian 12 machine (run as root).
#   make demo   install what is needed, then run the lab demo
#   make test   install what is needed, then run the test suite
PYTHON ?= /usr/bin/python3
export PATH := /usr/sbin:/usr/bin:/sbin:/bin:$(PATH)
export PYTHONPATH := $(CURDIR)/agent

DEB_PACKAGES = zookeeper default-jre-headless python3-kazoo python3-oslo.config \
	python3-os-ken python3-ovsdbapp openvswitch-switch python3-pytest \
	python3-venv python3-pip iproute2 procps ethtool busybox iputils-ping \
	tcpdump bird2 isc-dhcp-client

PACKAGING_PACKAGES = debhelper dh-python pybuild-plugin-pyproject python3-all \
	python3-build python3-installer python3-setuptools python3-wheel lintian \
	rpm rpmlint createrepo-c apt-utils dpkg-dev fakeroot git dnf \
	systemd-container debootstrap ansible ansible-lint python3-testinfra \
	python3-yaml

.PHONY: deps packaging-deps packages test test-unit demo bench clean

deps:
	@if ! dpkg -s $(DEB_PACKAGES) >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends $(DEB_PACKAGES); fi

packaging-deps:
	@if ! dpkg -s $(PACKAGING_PACKAGES) >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends $(PACKAGING_PACKAGES); fi

packages: packaging-deps
	packaging/build-packages

test: deps packaging-deps
	$(PYTHON) -m pytest -ra --durations=15 tests

test-unit:
	$(PYTHON) -m pytest -ra tests/unit

demo: deps
	$(PYTHON) -m dragonflow.lab.cli demo $(DEMO_ARGS)

bench: deps
	$(PYTHON) bench/nb_bench.py
	$(PYTHON) bench/controller_bench.py
	$(PYTHON) bench/l3_bench.py
	$(PYTHON) bench/trunk_bench.py
	$(PYTHON) bench/sfc_bench.py

clean:
	rm -rf build dist .pytest_cache
