"""Service function chain objects in the NB: bad input refused with the
field named, nothing written."""
import pytest

from test_nb_api import assert_refused


@pytest.fixture
def sfc(nb):
    net = nb.create('logical_switch', {'name': 'sfc-net'})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.0.0.0/24'})
    other = nb.create('logical_switch', {'name': 'other-net'})
    nb.create('subnet', {'network_id': other.id, 'cidr': '10.1.0.0/24'})
    ports = [nb.create('logical_port', {'network_id': net.id})
             for _ in range(3)]
    foreign = nb.create('logical_port', {'network_id': net.id,
                                         'topic': 'another-project'})
    elsewhere = nb.create('logical_port', {'network_id': other.id})
    pair = nb.create('port_pair', {'ingress_port': ports[1].id,
                                   'egress_port': ports[1].id})
    group = nb.create('port_pair_group', {'port_pairs': [pair.id]})
    empty = nb.create('port_pair_group', {'port_pairs': []})
    nb.create('port_chain', {'port_pair_groups': [group.id]})
    free_pair = nb.create('port_pair', {'ingress_port': ports[2].id,
                                        'egress_port': ports[2].id})
    return dict(ports=ports, foreign=foreign, elsewhere=elsewhere, pair=pair,
                group=group, empty=empty, free_pair=free_pair)


CASES = [
    ('a chain with an empty group', 'port_chain',
     lambda o: {'port_pair_groups': [o['empty'].id]}, 'has no port pairs'),
    ('a chain without groups', 'port_chain',
     lambda o: {'port_pair_groups': []}, 'port_pair_groups: is required'),
    ('a group already in another chain', 'port_chain',
     lambda o: {'port_pair_groups': [o['group'].id]},
     'port pair group .* is already used'),
    ('a pair already in another group', 'port_pair_group',
     lambda o: {'port_pairs': [o['pair'].id]}, 'port pair .* is already used'),
    ('a pair that does not exist', 'port_pair_group',
     lambda o: {'port_pairs': ['ghost']}, 'port_pair ghost does not exist'),
    ('a pair across two networks', 'port_pair',
     lambda o: {'ingress_port': o['ports'][0].id,
                'egress_port': o['elsewhere'].id},
     "must be on the ingress port's network"),
    ('a classifier on a foreign port', 'flow_classifier',
     lambda o: {'logical_source_port': o['foreign'].id},
     'belongs to'),
    ('a classifier with ports on icmp', 'flow_classifier',
     lambda o: {'logical_source_port': o['ports'][0].id, 'protocol': 'icmp',
                'destination_port_range_min': 1,
                'destination_port_range_max': 2}, 'icmp has no ports'),
    ('a classifier with a v6 prefix on IPv4', 'flow_classifier',
     lambda o: {'logical_source_port': o['ports'][0].id,
                'source_ip_prefix': '2001:db8::/64'},
     'does not match ethertype IPv4'),
]


@pytest.mark.parametrize('what, table, data, message', CASES,
                         ids=[c[0] for c in CASES])
def test_bad_sfc_input_is_refused_and_nothing_written(nb, sfc, what, table,
                                                      data, message):
    assert_refused(nb, table, data(sfc), message)
