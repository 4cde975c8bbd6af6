"""The change stream against a real ZooKeeper: ordered, lossless,
exactly-once per position, filtered, robust to trimming and garbage."""
import threading
import time

import pytest

from dragonflow.nb import changes
from dragonflow.store import zk

from waiting import wait_until
from workload import Recorder, replica_state, run_workload, store_state, \
    wait_converged


def log_seqs(nb):
    return sorted(zk.seq_of(n) for n in
                  nb.client.get_children(nb.store.layout.log))


def wait_for(predicate, timeout=10):
    return wait_until(predicate, timeout, interval=0.02)


def test_subscriber_starts_with_existing_state_then_follows(nb):
    network = nb.create('logical_switch', {'name': 'before'})
    seen = []
    sub = nb.subscribe(seen.append)
    try:
        assert sub.wait_synced(10)
        wait_for(lambda: len(seen) == 1)
        assert seen[0].resync and seen[0].action == 'create'
        port_net = nb.create('logical_switch', {'name': 'after'})
        nb.patch('logical_switch', network.id, {'mtu': 1400})
        nb.delete('logical_switch', port_net.id)
        wait_for(lambda: len(seen) == 4)
        assert [(c.action, c.id) for c in seen[1:]] == [
            ('create', port_net.id), ('update', network.id),
            ('delete', port_net.id)]
        assert seen[2].old.mtu == 1450 and seen[2].new.mtu == 1400
        positions = [c.position for c in seen[1:]]
        assert positions == sorted(positions) == log_seqs(nb)[-3:]
    finally:
        sub.stop()


def test_filters_by_table_and_topic(nb):
    ports, tenant_a = [], []
    by_table = nb.subscribe(ports.append, tables=['logical_switch'])
    by_topic = nb.subscribe(tenant_a.append, topics=['tenant-a'])
    try:
        nb.create('logical_switch', {'name': 'a', 'topic': 'tenant-a'})
        nb.create('logical_switch', {'name': 'b', 'topic': 'tenant-b'})
        nb.create('chassis', {'id': 'ch1', 'ip': '192.0.2.1'})  # shared
        wait_for(lambda: len(ports) == 2 and len(tenant_a) == 2)
        assert sorted(c.new.name for c in ports) == ['a', 'b']
        assert sorted(c.table for c in tenant_a) == ['chassis',
                                                     'logical_switch']
    finally:
        by_table.stop()
        by_topic.stop()


def test_lossless_and_exactly_once_under_concurrent_writers(nb, zk_server,
                                                            nb_root):
    from dragonflow.nb.api import NbApi
    recorders = [Recorder() for _ in range(3)]
    subs = [nb.subscribe(rec, name=f'sub{i}')
            for i, rec in enumerate(recorders)]
    writers = []
    clients = []
    for i in range(3):
        client = zk.make_client(zk_server.address)
        client.start(timeout=10)
        clients.append(client)
        api = NbApi(client, nb_root)
        writers.append(threading.Thread(target=run_workload,
                                        args=(api, 700, i)))
    try:
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        expected = wait_converged(nb, subs, recorders)
        assert len(expected) > 50
        all_positions = log_seqs(nb)
        for rec in recorders:
            # Every committed change seen, once, in commit order.
            assert rec.positions == all_positions
    finally:
        for s in subs:
            s.stop()
        for c in clients:
            c.stop()
            c.close()


def test_subscriber_behind_the_trimmed_horizon_resyncs(nb):
    gate = threading.Event()
    seen = Recorder()

    def slow(change):
        gate.wait()
        seen(change)
    sub = nb.subscribe(slow)
    try:
        nb.create('logical_switch', {'name': 'first'})   # blocks the worker
        time.sleep(0.2)
        for i in range(300):
            nb.create('logical_switch', {'name': f'n{i}'})
        victim = nb.list('logical_switch', name='n5')[0]
        nb.delete('logical_switch', victim.id)
        deleted = changes.trim(nb.store, max_entries=100, retention=3600)
        assert deleted >= 200
        gate.set()
        wait_for(lambda: replica_state(sub) == store_state(
            nb, ['logical_switch']) and seen.state == replica_state(sub),
            timeout=20)
        assert sub.resyncs >= 2      # the initial sync and the catch-up
    finally:
        gate.set()
        sub.stop()


def test_trimming_by_age_keeps_recent_entries(nb):
    for i in range(5):
        nb.create('logical_switch', {'name': f'old{i}'})
    time.sleep(1.2)
    for i in range(3):
        nb.create('logical_switch', {'name': f'new{i}'})
    assert changes.trim(nb.store, max_entries=1000, retention=1.0) == 5
    assert len(log_seqs(nb)) == 3
    horizon, _ = changes.read_horizon(nb.client, nb.store.layout)
    assert horizon < log_seqs(nb)[0]


def test_garbage_log_entries_and_objects_are_skipped(nb):
    seen = Recorder()
    nb.store.write_raw('logical_switch', 'junk', b'{"mtu": -1}')
    sub = nb.subscribe(seen)
    try:
        sub.wait_synced(10)
        nb.client.create(f'{nb.store.layout.log}/{zk.LOG_PREFIX}', b'\xffjunk',
                         sequence=True)
        nb.client.create(f'{nb.store.layout.log}/{zk.LOG_PREFIX}',
                         b'{"table": "logical_switch", "id": "x", '
                         b'"action": "create", "object": {"mtu": "big"}}',
                         sequence=True)
        good = nb.create('logical_switch', {'name': 'good'})
        wait_for(lambda: ('logical_switch', good.id) in seen.state)
        assert set(seen.state) == {('logical_switch', good.id)}
        assert sub.position == log_seqs(nb)[-1]
    finally:
        sub.stop()


@pytest.mark.parametrize('replays', [2])
def test_replaying_the_log_is_idempotent(nb, replays):
    """Re-applying entries already reflected changes nothing."""
    seen = Recorder()
    sub = nb.subscribe(seen)
    try:
        net = nb.create('logical_switch', {'name': 'x'})
        nb.patch('logical_switch', net.id, {'mtu': 1300})
        wait_for(lambda: sub.position == log_seqs(nb)[-1])
        before = (replica_state(sub), sub.delivered)
        for _ in range(replays):
            for seq in log_seqs(nb):
                data, stat = nb.client.get(changes.entry_path(nb.store.layout,
                                                              seq))
                sub._apply_entry(seq, data, stat.czxid)
        assert (replica_state(sub), sub.delivered) == before
    finally:
        sub.stop()


def test_one_write_behind_costs_one_read(nb):
    """The log node carries its newest entry: the read that re-arms the
    watch is the only one per write for a follower one write behind."""
    seen = Recorder()
    sub = nb.subscribe(seen)
    try:
        sub.wait_synced(10)
        net = nb.create('logical_switch', {'name': 'x'})
        wait_for(lambda: sub.position == log_seqs(nb)[-1])
        reads = sub.reads
        for mtu in range(1300, 1320):
            nb.patch('logical_switch', net.id, {'mtu': mtu})
            wait_for(lambda: sub.position == log_seqs(nb)[-1])
        assert sub.reads - reads <= 22     # 40 reading entries by number
        assert seen.positions[-20:] == log_seqs(nb)[-20:]
        assert replica_state(sub) == store_state(nb, ['logical_switch'])
    finally:
        sub.stop()


def test_a_write_after_a_trim_is_applied_at_its_own_position(nb):
    """ZooKeeper numbers entries by the log's child version, which the
    trim's deletions bump and mark in pzxid: the carried entry is not
    numbered from a child version the trim moved."""
    seen = Recorder()
    sub = nb.subscribe(seen)
    try:
        sub.wait_synced(10)
        for i in range(10):
            nb.create('logical_switch', {'name': f'n{i}'})
        wait_for(lambda: sub.position == log_seqs(nb)[-1])
        assert changes.trim(nb.store, max_entries=3, retention=3600) == 7
        _, stat = nb.client.get(nb.store.layout.log)
        assert stat.pzxid > stat.mzxid
        for i in range(3):
            net = nb.create('logical_switch', {'name': f'after{i}'})
            wait_for(lambda: ('logical_switch', net.id) in seen.state)
            assert sub.position == log_seqs(nb)[-1]
        assert seen.positions == sorted(seen.positions)
        assert replica_state(sub) == store_state(nb, ['logical_switch'])
    finally:
        sub.stop()
