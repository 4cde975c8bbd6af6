# Entry points for a fresh Debian 12 machine (run as root).
#   make demo   install what is needed, then run the lab demo
#   make test   install what is needed, then run the test suite
PYTHON ?= /usr/bin/python3
export PATH := /usr/sbin:/usr/bin:/sbin:/bin:$(PATH)
# The agent's sources, and the lab harness (test tooling, not shipped).
export PYTHONPATH := $(CURDIR)/agent:$(CURDIR)/tests

DEB_PACKAGES = zookeeper default-jre-headless python3-kazoo python3-oslo.config \
	python3-os-ken python3-ovsdbapp openvswitch-switch python3-pytest \
	python3-venv python3-pip iproute2 procps ethtool busybox-static iputils-ping \
	tcpdump bird2 isc-dhcp-client python3-prometheus-client

# Only the tests need these: a headless browser for the HTML reports,
# openssl for throwaway CAs (TLS to ZooKeeper), promtool (prometheus),
# a container engine for the CNI plugin (podman with the CNI backend;
# runc: crun refuses hosts with hybrid cgroups). busybox-static (above)
# is the lab's DHCP client and the containers' image.
TEST_PACKAGES = chromium chromium-driver python3-selenium openssl prometheus \
	podman runc containernetworking-plugins

# Only the benchmarks need these: HAProxy as the central load balancer
# the distributed one is compared with; iperf3 for throughput with and
# without a tap.
BENCH_PACKAGES = haproxy iperf3

PACKAGING_PACKAGES = debhelper dh-python pybuild-plugin-pyproject python3-all \
	python3-build python3-installer python3-setuptools python3-wheel lintian \
	rpm rpmlint createrepo-c apt-utils dpkg-dev fakeroot git dnf \
	systemd-container debootstrap ansible ansible-lint python3-testinfra \
	python3-yaml

# Install Debian packages unless they all are already.
define apt_install
	@if ! dpkg -s $(1) >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends $(1); fi
endef

.PHONY: deps packaging-deps test-deps bench-deps packages test test-pypi test-unit golden \
	demo bench clean

deps:
	$(call apt_install,$(DEB_PACKAGES))

packaging-deps:
	$(call apt_install,$(PACKAGING_PACKAGES))

test-deps:
	$(call apt_install,$(TEST_PACKAGES))

bench-deps:
	$(call apt_install,$(BENCH_PACKAGES))

packages: packaging-deps
	packaging/build-packages

test: deps packaging-deps test-deps
	$(PYTHON) -m pytest -ra --durations=15 tests

# The same code against the newest upstream releases from PyPI (the DEBs
# depend on Debian 12's older ones): unit, functional and lab tests in a
# venv without the system's site-packages.
PYPI_VENV ?= /var/tmp/dragonflow-pypi-venv
PYPI_VERSIONS = os-ken==4.2.2 kazoo==2.11.0 ovsdbapp==3.0.0 \
	oslo.config==10.7.0 prometheus-client==0.21.1 netaddr pytest
test-pypi: deps test-deps
	$(PYTHON) -m venv $(PYPI_VENV)
	$(PYPI_VENV)/bin/pip install -q $(PYPI_VERSIONS)
	$(PYPI_VENV)/bin/python -m pytest -ra tests/unit tests/functional \
		tests/lab

test-unit:
	$(PYTHON) -m pytest -ra tests/unit

# Regenerate the golden flow files after a deliberate change of an app's
# flows; review the diff like code.
golden:
	DF_GOLDEN_UPDATE=1 $(PYTHON) -m pytest -q tests/unit/test_golden_flows.py
	git status --short -- tests/unit/golden

demo: deps
	$(PYTHON) -m lab_harness.cli demo $(DEMO_ARGS)

bench: deps bench-deps
	$(PYTHON) bench/nb_bench.py
	$(PYTHON) bench/controller_bench.py
	$(PYTHON) bench/l3_bench.py
	$(PYTHON) bench/trunk_bench.py
	$(PYTHON) bench/sfc_bench.py
	$(PYTHON) bench/lb_bench.py
	$(PYTHON) bench/lb_scale_bench.py
	$(PYTHON) bench/fw_bench.py --lab
	$(PYTHON) bench/tap_bench.py
	$(PYTHON) bench/mcast_bench.py
	$(PYTHON) bench/mcast_scale_bench.py
	$(PYTHON) bench/cni_bench.py
	$(PYTHON) bench/pipeline_bench.py
	$(PYTHON) bench/incremental_bench.py
	$(PYTHON) bench/trace_bench.py
	$(PYTHON) bench/vs_ovn.py
	$(PYTHON) bench/scale.py

clean:
	rm -rf build dist .pytest_cache
