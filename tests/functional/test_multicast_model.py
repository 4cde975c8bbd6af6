"""Multicast in the NB (real ZooKeeper): snooping settings are validated
with the field named and nothing written; the agent's membership writer
creates, updates and deletes its records in few writes, whatever NB
already holds; ``dfctl multicast list`` shows groups, members per
chassis and the querier."""
import json

import pytest

from dragonflow.controller.apps import multicast
from dragonflow.model import multicast as mcm
from test_nb_api import assert_refused


CASES = [
    ('snooping on a VLAN network', 'logical_switch',
     dict(network_type='vlan', physical_network='physnet1',
          segmentation_id=10, multicast_snooping=True),
     'multicast_snooping: is for tunnelled networks'),
    ('a query response as long as the interval', 'logical_switch',
     dict(multicast_snooping=True, multicast_query_interval=10,
          multicast_query_response=10),
     'multicast_query_response: must be shorter'),
    ('a robustness of 0', 'logical_switch', dict(multicast_robustness=0),
     'multicast_robustness: must be >= 1'),
    ('an IPv6 querier address', 'logical_switch',
     dict(multicast_querier_address='fd00::1'),
     'multicast_querier_address: must be an IPv4'),
    ('a record of a unicast address', mcm.TABLE,
     dict(id=mcm.record_id('ch1', 'n', '10.0.0.1'), network_id='n',
          chassis='ch1', address='10.0.0.1'),
     'address: 10.0.0.1 is not a multicast address'),
    ('a record with another id', mcm.TABLE,
     dict(id='4a7a6a40-6a44-4c4e-8d26-2f0e3b1f4f10', network_id='n',
          chassis='ch1', address='239.1.1.1'), 'id: must be record_id'),
]


@pytest.mark.parametrize('what, table, data, message', CASES,
                         ids=[c[0] for c in CASES])
def test_bad_multicast_input_is_refused_and_nothing_written(
        nb, what, table, data, message):
    assert_refused(nb, table, data, message)


@pytest.fixture
def snooping(nb):
    net = nb.create('logical_switch', {'name': 'mc', 'topic': 'p1',
                                       'multicast_snooping': True})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.0.0.0/24',
                         'topic': 'p1'})
    ports = [nb.create('logical_port', {'network_id': net.id,
                                        'name': f'vm{i}', 'topic': 'p1'})
             for i in range(3)]
    return net, ports


def test_the_writer_creates_updates_and_deletes_its_records(nb, snooping):
    net, ports = snooping
    app = multicast.MulticastApp()
    app.topics[net.id] = 'p1'
    a, b = (net.id, '239.1.1.1'), (net.id, 'ff15::1')
    app.write(nb, 'ch1', {a: [ports[0].id, ports[1].id], b: [ports[2].id]})
    records = {r.address: r for r in nb.list(mcm.TABLE)}
    assert set(records) == {'239.1.1.1', 'ff15::1'}
    assert records['239.1.1.1'].ports == [ports[0].id, ports[1].id]
    assert records['239.1.1.1'].topic == 'p1'
    app.write(nb, 'ch1', {a: [ports[1].id], b: []})
    assert [(r.address, r.ports) for r in nb.list(mcm.TABLE)] == [
        ('239.1.1.1', [ports[1].id])]
    # A new writer (an agent restarted) that does not know the record
    # exists: it replaces it rather than failing.
    again = multicast.MulticastApp()
    again.write(nb, 'ch1', {a: [ports[2].id]})
    assert [r.ports for r in nb.list(mcm.TABLE)] == [[ports[2].id]]


def test_dfctl_multicast_list(nb, dfctl, snooping):
    net, ports = snooping
    app = multicast.MulticastApp()
    app.write(nb, 'ch1', {(net.id, '239.1.1.1'): [ports[0].id]})
    app.write(nb, 'ch2', {(net.id, '239.1.1.1'): [ports[1].id,
                                                   ports[2].id]})
    out = dfctl('multicast', 'list', '--network', 'mc').stdout
    lines = out.splitlines()
    assert lines[0].split() == ['NETWORK', 'GROUP', 'CHASSIS', 'PORTS',
                                'QUERIER']
    assert lines[1].split()[:4] == ['mc', '239.1.1.1', 'ch1', 'vm0']
    assert lines[2].split()[:4] == ['mc', '239.1.1.1', 'ch2', 'vm1,vm2']
    assert 'each chassis, from 10.0.0.1, every 125s' in lines[1]
    rows = json.loads(dfctl('--json', 'multicast', 'list').stdout)
    assert [(r['chassis'], r['ports']) for r in rows] == [
        ('ch1', ['vm0']), ('ch2', ['vm1', 'vm2'])]
    proc = dfctl('multicast', 'list', '--network', 'nope', expect=1)
    assert 'nope' in proc.stderr
    # Switching snooping on and off is a network update.
    dfctl('network', 'update', 'mc', '--multicast-snooping', 'false')
    assert not nb.get('logical_switch', net.id).multicast_snooping
