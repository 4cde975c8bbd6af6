"""The multi-chassis lab for L2 tests: real ZooKeeper, real OVS (userspace
datapath) per chassis, real df-local-controller processes, VMs as network
namespaces. Needs root (namespaces)."""
import os
import shutil
import tempfile

import pytest

from lab_harness.netlab import NetLab
from dragonflow.nb.api import NbApi
from dragonflow.store import zk

from topology import Topology

if os.geteuid() != 0 or not shutil.which('ovs-vswitchd'):
    pytest.skip('the lab needs root and Open vSwitch', allow_module_level=True)


@pytest.fixture(scope='session')
def lab():
    workdir = tempfile.mkdtemp(prefix='df-lab-')
    # Overridable so a second run (a developer's, next to CI) can coexist.
    net = NetLab(workdir, prefix=os.environ.get('DF_LAB_PREFIX', 'dfl'),
                 underlay=os.environ.get('DF_LAB_UNDERLAY', '172.30.9.0/24'))
    try:
        net.create().start_chassis(['ch1', 'ch2', 'ch3'])
        yield net
    finally:
        net.destroy()
        net.remove_dir()


@pytest.fixture(scope='session')
def lab_nb(lab):
    client = zk.make_client(lab.zk_address)
    client.start(timeout=20)
    yield NbApi(client)
    client.stop()
    client.close()


@pytest.fixture
def topo(lab, lab_nb):
    topology = Topology(lab, lab_nb)
    yield topology
    topology.cleanup()


@pytest.fixture
def dfctl_lab(lab):
    """dfctl against the lab's ZooKeeper, as a subprocess."""
    import subprocess
    import sys

    from lab_harness.netlab import AGENT_DIR

    def run(*args):
        proc = subprocess.run(
            [sys.executable, '-m', 'dragonflow.cli.dfctl', *args],
            capture_output=True, text=True, timeout=60,
            env=dict(os.environ, PYTHONPATH=AGENT_DIR,
                     OS_DF__REMOTE_DB_HOSTS=lab.zk_address))
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    return run
