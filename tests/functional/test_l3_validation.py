"""Bad L3 and security input is refused by the NB API with a message
naming what is wrong, and nothing is written (issue 7's list)."""
import pytest

from test_nb_api import assert_refused


@pytest.fixture
def l3(nb):
    ext = nb.create('logical_switch', {
        'name': 'public', 'external': True, 'network_type': 'flat',
        'physical_network': 'physnet1'})
    nb.create('subnet', {'network_id': ext.id, 'cidr': '172.24.4.0/24'})
    inside = nb.create('logical_switch', {'name': 'inside'})
    subnet = nb.create('subnet', {'network_id': inside.id,
                                  'cidr': '10.0.0.0/24'})
    other = nb.create('logical_switch', {'name': 'other'})
    overlapping = nb.create('subnet', {'network_id': other.id,
                                       'cidr': '10.0.0.0/16'})
    r1 = nb.create('logical_router', {'name': 'r1'})
    r2 = nb.create('logical_router', {'name': 'r2'})
    nb.create('logical_router_port', {'router_id': r1.id,
                                      'subnet_id': subnet.id})
    port = nb.create('logical_port', {'network_id': inside.id})
    empty = nb.create('logical_switch', {'name': 'no-subnets'})
    bare = nb.create('logical_port', {'network_id': empty.id})
    assert bare.ips == []
    group = nb.create('security_group', {'name': 'g'})
    return dict(ext=ext, inside=inside, subnet=subnet, overlapping=overlapping,
                r1=r1, r2=r2, port=port, bare=bare, group=group)


CASES = [
    ('a subnet already routed by another router', 'logical_router_port',
     lambda o: {'router_id': o['r2'].id, 'subnet_id': o['subnet'].id,
                'ip': '10.0.0.254'}, 'is already attached to a router by'),
    ('the gateway address of another router', 'logical_router_port',
     lambda o: {'router_id': o['r2'].id, 'subnet_id': o['subnet'].id},
     'IP address 10.0.0.1 is already used by'),
    ('overlapping subnets on one router', 'logical_router_port',
     lambda o: {'router_id': o['r1'].id, 'subnet_id': o['overlapping'].id},
     'overlaps'),
    ('a FIP from a network that is not external', 'floating_ip',
     lambda o: {'floating_network_id': o['inside'].id},
     'is not external'),
    ('a FIP on a port without a fixed IP', 'floating_ip',
     lambda o: {'floating_network_id': o['ext'].id, 'port_id': o['bare'].id},
     'has no fixed IP'),
    ('an IPv6 FIP', 'floating_ip',
     lambda o: {'floating_network_id': o['ext'].id,
                'floating_ip_address': '2001:db8::5'},
     'IPv6 is not NATed'),
    ('an IPv6 SNAT gateway', 'logical_router',
     lambda o: {'external_gateway': {'network_id': o['ext'].id,
                                     'ip': '2001:db8::5'}},
     'IPv6 is not NATed'),
    ('a rule with an inverted port range', 'security_group_rule',
     lambda o: {'security_group_id': o['group'].id, 'direction': 'ingress',
                'protocol': 'tcp', 'port_range_min': 90,
                'port_range_max': 80}, 'is above port_range_max'),
    ('a rule with an unknown protocol', 'security_group_rule',
     lambda o: {'security_group_id': o['group'].id, 'direction': 'ingress',
                'protocol': 'tcpx'}, 'unknown protocol'),
    ('ports on a protocol without ports', 'security_group_rule',
     lambda o: {'security_group_id': o['group'].id, 'direction': 'ingress',
                'protocol': 'gre', 'port_range_min': 1, 'port_range_max': 2},
     'unknown protocol|has no ports'),
    ('a BGP peer with an invalid AS', 'bgp_peer',
     lambda o: {'peer_ip': '172.24.4.1', 'remote_as': 4294967296},
     'remote_as'),
    ('a BGP peer with an invalid address', 'bgp_peer',
     lambda o: {'peer_ip': '172.24.4.300', 'remote_as': 65000},
     'peer_ip'),
]


@pytest.mark.parametrize('what, table, data, message', CASES,
                         ids=[c[0] for c in CASES])
def test_bad_l3_input_is_refused_and_nothing_written(nb, l3, what, table,
                                                     data, message):
    assert_refused(nb, table, data(l3), message)
