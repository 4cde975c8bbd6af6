"""The bulk NB path against a real ZooKeeper: many objects per transaction,
validated like single writes, unique across the batch, nothing written
when a write is refused, and subscribers see every object."""
import threading
import time

import pytest

from dragonflow import errors
from dragonflow.nb import api
from test_nb_api import snapshot


@pytest.fixture
def net(nb):
    network = nb.create('logical_switch', {'name': 'bulk'})
    nb.create('subnet', {'network_id': network.id, 'cidr': '10.9.0.0/16'})
    return network


def test_many_ports_in_few_transactions_get_distinct_addresses(nb, net):
    commits = []
    real = nb.store.commit_many

    def counting(wss):
        commits.append(len(wss))
        return real(wss)
    nb.store.commit_many = counting
    ports = nb.write_many([('create', 'logical_port',
                            {'network_id': net.id, 'name': f'p{i}'})
                           for i in range(300)])
    assert len(ports) == 300 and sum(commits) == 300
    assert len(commits) < 10                  # chunked by size, not 1 by 1
    ips = [p.ips[0] for p in ports]
    macs = [p.macs[0] for p in ports]
    keys = [p.unique_key for p in ports]
    assert len(set(ips)) == len(set(macs)) == len(set(keys)) == 300
    stored = {p.id: p for p in nb.list('logical_port')}
    assert all(stored[p.id].ips == p.ips and stored[p.id].version == 0
               for p in ports)


def test_a_bad_write_refuses_the_batch_naming_it_and_writes_nothing(nb, net):
    before = snapshot(nb)
    writes = [('create', 'logical_port', {'network_id': net.id})
              for _ in range(5)]
    writes.insert(3, ('create', 'logical_port',
                      {'network_id': net.id, 'ips': ['10.99.0.1']}))
    with pytest.raises(errors.ValidationError,
                       match=r'write 4 of 6 \(create logical_port\).*'
                             r'10\.99\.0\.1'):
        nb.write_many(writes)
    assert snapshot(nb) == before


def test_a_fixed_address_taken_within_the_batch_is_refused(nb, net):
    before = snapshot(nb)
    with pytest.raises(errors.UniqueConflict, match='write 2 of 2'):
        nb.write_many([('create', 'logical_port',
                        {'network_id': net.id, 'ips': ['10.9.0.50']}),
                       ('create', 'logical_port',
                        {'network_id': net.id, 'ips': ['10.9.0.50']})])
    assert snapshot(nb) == before


def test_a_conflict_found_at_commit_leaves_the_chunk_unwritten(nb, net):
    taken = nb.create('logical_port', {'network_id': net.id})
    before = snapshot(nb)
    # Validation reads the store before the other writer commits.
    real = nb.store.commit_many

    def racing(wss):
        nb.create('logical_port', {'network_id': net.id,
                                   'ips': ['10.9.0.77']})
        nb.store.commit_many = real
        return real(wss)
    nb.store.commit_many = racing
    with pytest.raises(errors.UniqueConflict, match='10.9.0.77'):
        nb.write_many([('create', 'logical_port', {'network_id': net.id}),
                       ('create', 'logical_port',
                        {'network_id': net.id, 'ips': ['10.9.0.77']})])
    after = snapshot(nb)
    added = {p for p in after if p not in before}
    # Only the racing writer's port (and its log entries) appeared.
    assert {p for p in added if '/logical_port/' in p and '/objects/' in p
            } <= {p for p in added if taken.id not in p}
    assert len([p for p in nb.list('logical_port')]) == 2


def test_patches_update_in_bulk_and_a_race_falls_back_to_single_writes(
        nb, net):
    ports = nb.write_many([('create', 'logical_port',
                            {'network_id': net.id}) for _ in range(20)])
    real = nb.store.commit_many

    def racing(wss):
        other = nb.get('logical_port', ports[0].id)
        other.name = 'concurrent'
        nb.update(other)
        nb.store.commit_many = real
        return real(wss)
    nb.store.commit_many = racing
    bound = nb.write_many([('patch', 'logical_port', p.id,
                            {'binding_chassis': 'ch1'}) for p in ports])
    assert all(p.binding_chassis == 'ch1' for p in bound)
    first = nb.get('logical_port', ports[0].id)
    assert first.name == 'concurrent' and first.binding_chassis == 'ch1'
    with pytest.raises(errors.ValidationError, match='cannot be changed'):
        nb.write_many([('patch', 'logical_port', ports[1].id,
                        {'network_id': 'other'})])
    with pytest.raises(errors.NotFound):
        nb.write_many([('patch', 'logical_port', 'nope', {'name': 'x'})])


def test_patches_of_known_objects_read_nothing_and_a_stale_one_is_read_again(
        nb, net):
    chassis = nb.create('chassis', {'id': 'ch1', 'ip': '192.0.2.1'})
    ports = nb.write_many([('create', 'logical_port',
                            {'network_id': net.id}) for _ in range(3)])
    stale = ports[2]
    nb.patch('logical_port', stale.id, {'name': 'renamed'})
    reads = []
    for name in ('get', 'exists', 'get_children'):
        real = getattr(nb.client, name)
        setattr(nb.client, name,
                lambda *a, _real=real, _name=name, **kw:
                reads.append(_name) or _real(*a, **kw))
    real_many = nb.store.get_many_raw
    nb.store.get_many_raw = lambda *a: reads.append('many') or real_many(*a)
    try:
        nb.write_many([('patch', 'logical_port', p.id,
                        {'binding_chassis': 'ch1'}) for p in ports[:2]],
                      known=[*ports[:2], net, chassis])
        assert reads == []          # the transaction is the only request
        # Changed since: its compare-and-set fails, and it is read again.
        bound = nb.write_many([('patch', 'logical_port', stale.id,
                                {'binding_chassis': 'ch1'})],
                              known=[stale, net, chassis])
    finally:
        for name in ('get', 'exists', 'get_children', 'get_many_raw'):
            for owner in (nb.client, nb.store):
                owner.__dict__.pop(name, None)
    assert reads
    assert bound[0].name == 'renamed'
    stored = {p.id: p for p in nb.list('logical_port')}
    assert [stored[p.id].binding_chassis for p in ports] == ['ch1'] * 3
    assert stored[stale.id].name == 'renamed'


def test_subscribers_see_every_object_of_a_bulk_write(nb, net):
    seen, done = set(), threading.Event()
    wanted = 250

    def record(change):
        if change.table == 'logical_port' and change.action == 'create':
            seen.add(change.id)
            if len(seen) == wanted:
                done.set()
    sub = nb.subscribe(record)
    try:
        ports = nb.write_many([('create', 'logical_port',
                                {'network_id': net.id})
                               for _ in range(wanted)],
                              max_bytes=api.BULK_BYTES // 8)
        assert done.wait(20), f'{len(seen)} of {wanted} seen'
        assert seen == {p.id for p in ports}
    finally:
        sub.stop()


def test_two_writes_of_one_object_go_in_two_transactions(nb, net):
    port = nb.create('logical_port', {'network_id': net.id})
    commits = []
    real = nb.store.commit_many

    def counting(wss):
        commits.append([ws.id for ws in wss])
        return real(wss)
    nb.store.commit_many = counting
    seen = []
    sub = nb.subscribe(lambda c: c.id == port.id and seen.append(c.obj.name))
    try:
        nb.write_many([('patch', 'logical_port', port.id, {'name': 'a'}),
                       ('patch', 'logical_port', port.id, {'name': 'b'})])
        assert commits == [[port.id], [port.id]]
        assert nb.get('logical_port', port.id).name == 'b'
        deadline = time.monotonic() + 10
        while seen[-1:] != ['b'] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen[-1:] == ['b']
    finally:
        sub.stop()
