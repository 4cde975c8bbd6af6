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


# What an agent logs when the pipeline contract breaks: a refused flow
# (undeclared stage, not a writer, undeclared next stage, second owner), a
# packet-in that no app asked for, or a flow the switch refused (a match
# OVS cannot take, e.g. a field ahead of its prerequisite).
CONTRACT_BREACHES = (b'flow refused: ', b'packet-in no app asked for',
                     b'switch error type ')


@pytest.fixture(autouse=True)
def pipeline_contract_holds(request):
    """Every lab test also checks that no agent refused a flow or dropped
    an unclaimed packet-in, and that no switch refused one of its
    messages, while it ran: the pipeline check is on in the agents (the
    default) and a breach fails the test that caused it."""
    if 'lab' not in request.fixturenames:
        yield
        return
    lab = request.getfixturevalue('lab')
    logs = {name: os.path.join(ch.dir, 'controller.log')
            for name, ch in lab.chassis.items()}
    start = {name: os.path.getsize(path) if os.path.exists(path) else 0
             for name, path in logs.items()}
    yield
    breaches = []
    for name, path in logs.items():
        if not os.path.exists(path):
            continue
        with open(path, 'rb') as f:
            f.seek(start[name] if os.path.getsize(path) >= start[name]
                   else 0)
            breaches += [f'{name}: {line.decode(errors="replace").strip()}'
                         for line in f if any(b in line for b in
                                              CONTRACT_BREACHES)]
    assert not breaches, '\n'.join(breaches)


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


def _dfctl(lab, args):
    import subprocess
    import sys

    from lab_harness.netlab import AGENT_DIR
    return subprocess.run(
        [sys.executable, '-m', 'dragonflow.cli.dfctl', *args],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=AGENT_DIR,
                 OS_DF__REMOTE_DB_HOSTS=lab.zk_address))


@pytest.fixture
def dfctl_lab(lab):
    """dfctl against the lab's ZooKeeper, as a subprocess."""
    def run(*args):
        proc = _dfctl(lab, args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    return run


@pytest.fixture
def dfctl_verdict(lab):
    """dfctl COMMAND ... --json for commands whose exit code is a verdict
    (trace, check: 0 or 1): (exit code, the JSON answer)."""
    import json

    def run(*args):
        proc = _dfctl(lab, args + ('--json',))
        assert proc.returncode in (0, 1), proc.stderr
        return proc.returncode, json.loads(proc.stdout)
    return run
