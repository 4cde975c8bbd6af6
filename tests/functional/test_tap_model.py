"""Tap-as-a-service objects in the NB (real ZooKeeper): bad input is
refused with the field named and nothing written; dfctl creates them."""
import json

import pytest

from dragonflow import errors
from test_nb_api import assert_refused, snapshot


@pytest.fixture
def tap(nb):
    net = nb.create('logical_switch', {'name': 'tap-net'})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.0.0.0/24'})
    monitor = nb.create('logical_port', {'network_id': net.id,
                                         'name': 'monitor',
                                         'port_security_enabled': False})
    secured = nb.create('logical_port', {'network_id': net.id,
                                         'name': 'secured'})
    vm = nb.create('logical_port', {'network_id': net.id, 'name': 'vm'})
    parent = nb.create('logical_port', {'network_id': net.id,
                                        'name': 'parent'})
    nb.create('trunk', {'port_id': parent.id})
    foreign = nb.create('logical_port', {'network_id': net.id,
                                         'topic': 'another-project'})
    service = nb.create('tap_service', {'name': 'ts', 'port_id': monitor.id})
    return dict(monitor=monitor, secured=secured, vm=vm, parent=parent,
                foreign=foreign, service=service)


def _flow(o, source, **fields):
    return dict(fields, tap_service_id=o['service'].id,
                source_port=o[source].id)


CASES = [
    ('a service on a port with port security', 'tap_service',
     lambda o: {'port_id': o['secured'].id}, 'port_id: port .* has port '
     'security on'),
    ('a second service on one port', 'tap_service',
     lambda o: {'port_id': o['monitor'].id}, 'tap_port'),
    ('a flow from the service\'s own port', 'tap_flow',
     lambda o: _flow(o, 'monitor'),
     'source_port: is the tap service\'s own port'),
    ('a vlan filter that does not parse', 'tap_flow',
     lambda o: _flow(o, 'parent', vlan_filter='9,x'),
     'vlan_filter: does not match'),
    ('a reversed vlan range', 'tap_flow',
     lambda o: _flow(o, 'parent', vlan_filter='27-18'),
     'vlan_filter: 27-18: the range is reversed'),
    ('a vlan out of range', 'tap_flow',
     lambda o: _flow(o, 'parent', vlan_filter='4095'),
     'VLAN ids are 1-4094'),
    ('a vlan filter on a port that is no trunk', 'tap_flow',
     lambda o: _flow(o, 'vm', vlan_filter='9'), 'is not a trunk parent'),
    ('a source port of another project', 'tap_flow',
     lambda o: _flow(o, 'foreign'),
     'source_port: logical_port .* belongs to topic'),
    ('an unknown direction', 'tap_flow',
     lambda o: _flow(o, 'vm', direction='SIDEWAYS'),
     'direction: must be one of IN'),
]


@pytest.mark.parametrize('what, table, data, message', CASES,
                         ids=[c[0] for c in CASES])
def test_bad_tap_input_is_refused_and_nothing_written(
        nb, tap, what, table, data, message):
    assert_refused(nb, table, data(tap), message)


def test_flows_into_a_service_and_one_source_in_two(nb, tap, dfctl):
    nb.create('tap_flow', {'tap_service_id': tap['service'].id,
                           'source_port': tap['vm'].id})
    flow = json.loads(dfctl(
        '--json', 'tap-flow', 'create', '--tap-service-id', 'ts',
        '--source-port', tap['parent'].id, '--direction', 'IN',
        '--vlan-filter', '9,18-27,36', '--position', 'before-sg').stdout)
    assert flow['direction'] == 'IN' and flow['position'] == 'before-sg'
    before = snapshot(nb)
    with pytest.raises(errors.UniqueConflict):      # the same pair twice
        nb.create('tap_flow', {'tap_service_id': tap['service'].id,
                               'source_port': tap['vm'].id})
    # The service is in use: deleting it needs --cascade.
    with pytest.raises(errors.StillReferenced):
        nb.delete('tap_service', tap['service'].id)
    assert snapshot(nb) == before
    other = nb.create('logical_port', {
        'network_id': tap['vm'].network_id, 'port_security_enabled': False})
    second = nb.create('tap_service', {'port_id': other.id})
    nb.create('tap_flow', {'tap_service_id': second.id,
                           'source_port': tap['vm'].id})
    nb.delete('tap_service', tap['service'].id, cascade=True)
    assert [f.tap_service_id for f in nb.list('tap_flow')] == [second.id]
