"""ZooKeeper observers (non-voting members) serve the agents' reads and
watches: a subscriber connected only to an observer sees every change
written through the quorum, bulk writes included, and a client may write
through an observer (it forwards to the leader); clients connect to the
hosts in the order given when asked (the nearest observer first)."""
import os
import time

import pytest

from lab_harness import zookeeper
from dragonflow.nb.api import NbApi
from dragonflow.store import zk

pytestmark = pytest.mark.ensemble


@pytest.fixture(scope='module')
def ensemble(workdir):
    ens = zookeeper.ZkEnsemble(os.path.join(workdir, 'observed'), size=3,
                               observers=1)
    try:
        ens.start()
        ens.wait_leader()
        yield ens
    finally:
        ens.stop()


def connect(hosts, in_order=False):
    client = zk.make_client(hosts, timeout=10, in_order=in_order)
    client.start(timeout=20)
    return client


def test_a_subscriber_on_an_observer_sees_every_change(ensemble, nb_root):
    [observer] = ensemble.observers
    assert observer.mode() == 'observer'
    writer = connect(ensemble.voter_hosts)
    reader = connect(observer.address)
    try:
        nb = NbApi(writer, nb_root)
        seen = {}
        sub = NbApi(reader, nb_root).subscribe(
            lambda c: seen.__setitem__(c.id, c.action))
        try:
            net = nb.create('logical_switch', {'name': 'observed'})
            nb.create('subnet', {'network_id': net.id,
                                 'cidr': '10.77.0.0/24'})
            ports = nb.write_many([('create', 'logical_port',
                                    {'network_id': net.id})
                                   for _ in range(100)])
            nb.delete('logical_port', ports[0].id)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (
                    len(seen) >= 102 and seen.get(ports[0].id) == 'delete'):
                time.sleep(0.05)
            assert all(p.id in seen for p in ports)
            assert seen[ports[0].id] == 'delete'
        finally:
            sub.stop()
        # Writes through the observer are forwarded to the leader.
        through = NbApi(reader, nb_root).create('logical_switch',
                                                {'name': 'via-observer'})
        # The writer's server sees it once it has caught up with the
        # leader: sync first (ZooKeeper orders reads per client only).
        writer.sync(nb_root)
        assert nb.get('logical_switch', through.id).name == 'via-observer'
    finally:
        for client in (writer, reader):
            client.stop()
            client.close()


def test_in_order_connects_to_the_first_host(ensemble):
    [observer] = ensemble.observers
    hosts = ','.join([observer.address] +
                     [s.address for s in ensemble.voters])
    for _ in range(3):
        client = connect(hosts, in_order=True)
        try:
            assert client._connection._socket.getpeername()[1] == \
                observer.port
        finally:
            client.stop()
            client.close()
