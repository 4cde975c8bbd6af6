"""Fault test on a 3-node ZooKeeper ensemble: the leader is killed in the
middle of a randomized concurrent workload; every subscriber still ends
with exactly the store's state and saw every change position exactly once."""
import os
import threading
import time

import pytest

from lab_harness import zookeeper
from dragonflow.nb.api import NbApi
from dragonflow.store import zk

from workload import Recorder, run_workload, wait_converged

pytestmark = pytest.mark.ensemble


@pytest.fixture(scope='module')
def ensemble(workdir):
    ens = zookeeper.ZkEnsemble(os.path.join(workdir, 'ensemble'), size=3)
    try:
        ens.start()
        ens.wait_leader()
        yield ens
    finally:
        ens.stop()


def connect(hosts):
    client = zk.make_client(hosts, timeout=10)
    client.start(timeout=20)
    return client


def test_no_change_lost_when_the_leader_dies(ensemble, nb_root):
    clients = [connect(ensemble.hosts) for _ in range(5)]
    try:
        observer = NbApi(clients[0], nb_root)
        recorders = [Recorder() for _ in range(3)]
        subs = [NbApi(clients[1 + i], nb_root).subscribe(rec, name=f'sub{i}')
                for i, rec in enumerate(recorders)]
        writer_api = NbApi(clients[4], nb_root)
        progress = []
        writers = [threading.Thread(
            target=lambda i=i: progress.append(
                run_workload(writer_api, 600, seed=100 + i)))
            for i in range(3)]
        for w in writers:
            w.start()
        time.sleep(1.5)
        leader = ensemble.wait_leader()
        at_kill = len(clients[0].get_children(observer.store.layout.log))
        assert 0 < at_kill
        leader.kill()
        for w in writers:
            w.join(timeout=300)
        assert sum(progress) > 500
        # The killed server stays down: the remaining two keep quorum.
        expected = wait_converged(observer, subs, recorders, timeout=60)
        assert len(expected) > 50
        positions = sorted(zk.seq_of(n) for n in clients[0].get_children(
            observer.store.layout.log))
        assert len(positions) > at_kill + 100, 'writes went on after the kill'
        for rec in recorders:
            assert rec.positions == positions
        for sub in subs:
            sub.stop()
    finally:
        for c in clients:
            c.stop()
            c.close()
