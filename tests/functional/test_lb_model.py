"""Load balancer objects in the NB (real ZooKeeper): the VIP port comes and
goes with its load balancer in one transaction, and bad input is refused
with the field named and nothing written."""
import json

import pytest

from dragonflow import errors
from dragonflow.trace import check
from test_nb_api import assert_refused, snapshot


@pytest.fixture
def site(nb):
    net = nb.create('logical_switch', {'name': 'lb-net'})
    subnet = nb.create('subnet', {'network_id': net.id,
                                  'cidr': '10.0.0.0/24', 'name': 'lb-sub'})
    other = nb.create('logical_switch', {'name': 'routed-net'})
    routed = nb.create('subnet', {'network_id': other.id,
                                  'cidr': '10.1.0.0/24'})
    router = nb.create('logical_router', {'name': 'r1'})
    for s in (subnet, routed):
        nb.create('logical_router_port', {'router_id': router.id,
                                          'subnet_id': s.id})
    island = nb.create('logical_switch', {'name': 'island'})
    lonely = nb.create('subnet', {'network_id': island.id,
                                  'cidr': '10.2.0.0/24'})
    taken = nb.create('logical_port', {'network_id': net.id,
                                       'ips': ['10.0.0.50']})
    lb = nb.create('loadbalancer', {'name': 'web', 'vip_subnet_id': subnet.id,
                                    'vip_address': '10.0.0.100'})
    pool = nb.create('pool', {'loadbalancer_id': lb.id, 'protocol': 'TCP',
                              'lb_algorithm': 'ROUND_ROBIN'})
    nb.create('listener', {'loadbalancer_id': lb.id, 'protocol': 'TCP',
                           'protocol_port': 80, 'default_pool_id': pool.id})
    return dict(net=net, subnet=subnet, routed=routed, lonely=lonely,
                taken=taken, lb=lb, pool=pool)


def test_vip_port_created_and_deleted_with_the_load_balancer(nb, site):
    lb = site['lb']
    port = nb.get('logical_port', lb.vip_port_id)
    assert port.ips == ['10.0.0.100'] and port.network_id == site['net'].id
    assert port.device_owner == 'Octavia' and port.device_id == lb.id
    assert lb.vip_network_id == site['net'].id
    # An allocated VIP: the first free address of the subnet.
    auto = nb.create('loadbalancer', {'vip_subnet_id': site['subnet'].id})
    assert auto.vip_address == nb.get('logical_port',
                                      auto.vip_port_id).ips[0]
    # The VIP port cannot go alone; the load balancer takes it along.
    with pytest.raises(errors.StillReferenced):
        nb.delete('logical_port', lb.vip_port_id)
    nb.delete('loadbalancer', auto.id)
    with pytest.raises(errors.NotFound):
        nb.get('logical_port', auto.vip_port_id)
    # With children: refused unless cascade, then everything goes at once.
    member = nb.create('member', {'pool_id': site['pool'].id,
                                  'address': '10.1.0.7',
                                  'subnet_id': site['routed'].id,
                                  'protocol_port': 8080})
    assert member.operating_status == 'NO_MONITOR'
    with pytest.raises(errors.StillReferenced):
        nb.delete('loadbalancer', lb.id)
    nb.delete('loadbalancer', lb.id, cascade=True)
    for table in ('loadbalancer', 'listener', 'pool', 'member'):
        assert nb.list(table) == []
    with pytest.raises(errors.NotFound):
        nb.get('logical_port', lb.vip_port_id)


def test_check_does_not_expect_the_vip_port_plugged(nb, site):
    claimed = nb.create('logical_port', {'network_id': site['net'].id,
                                         'device_owner': 'compute:nova'})
    subjects = {f.subject for f in check.ports(nb, {})}
    assert claimed.id in subjects and site['lb'].vip_port_id not in subjects


def test_member_subnet_defaults_to_the_vips(nb, site):
    member = nb.create('member', {'pool_id': site['pool'].id,
                                  'address': '10.0.0.9', 'protocol_port': 80})
    assert member.subnet_id == site['subnet'].id


CASES = [
    ('a VIP outside its subnet', 'loadbalancer',
     lambda s: {'vip_subnet_id': s['subnet'].id, 'vip_address': '10.9.0.1'},
     r'vip_address: 10.9.0.1 is not in subnet'),
    ('a VIP already taken', 'loadbalancer',
     lambda s: {'vip_subnet_id': s['subnet'].id, 'vip_address': '10.0.0.50'},
     r'vip_address: 10.0.0.50 is taken'),
    ('a VIP on a missing subnet', 'loadbalancer',
     lambda s: {'vip_subnet_id': 'ghost'}, 'subnet ghost does not exist'),
    ('a member on a subnet no router reaches', 'member',
     lambda s: {'pool_id': s['pool'].id, 'address': '10.2.0.5',
                'subnet_id': s['lonely'].id, 'protocol_port': 80},
     'not reachable from the VIP'),
    ('a member outside the VIP subnet with no subnet', 'member',
     lambda s: {'pool_id': s['pool'].id, 'address': '10.1.0.5',
                'protocol_port': 80}, "give the member's subnet"),
    ('a member address outside its subnet', 'member',
     lambda s: {'pool_id': s['pool'].id, 'address': '10.0.0.5',
                'subnet_id': s['routed'].id, 'protocol_port': 80},
     'is not in subnet'),
    ('a duplicate listener port', 'listener',
     lambda s: {'loadbalancer_id': s['lb'].id, 'protocol': 'HTTP',
                'protocol_port': 80}, 'lb_listener'),
    ('a weight out of range', 'member',
     lambda s: {'pool_id': s['pool'].id, 'address': '10.0.0.9',
                'protocol_port': 80, 'weight': 257}, 'weight: must be <= 256'),
    ('delay below timeout', 'healthmonitor',
     lambda s: {'pool_id': s['pool'].id, 'type': 'TCP', 'delay': 2,
                'timeout': 5, 'max_retries': 3}, 'delay: 2 is below timeout'),
    ('an unknown algorithm', 'pool',
     lambda s: {'loadbalancer_id': s['lb'].id, 'protocol': 'TCP',
                'lb_algorithm': 'LEAST_CONNECTIONS'},
     'lb_algorithm: must be one of ROUND_ROBIN'),
    ('a UDP pool behind a TCP listener', 'listener',
     lambda s: {'loadbalancer_id': s['lb'].id, 'protocol': 'TCP',
                'protocol_port': 81,
                'default_pool_id': s['udp_pool'].id}, 'is UDP'),
    ('HTTP fields on a TCP monitor', 'healthmonitor',
     lambda s: {'pool_id': s['pool'].id, 'type': 'TCP', 'delay': 5,
                'timeout': 2, 'max_retries': 3, 'url_path': '/health'},
     'TCP probes take no'),
    ('bad expected codes', 'healthmonitor',
     lambda s: {'pool_id': s['pool'].id, 'type': 'HTTP', 'delay': 5,
                'timeout': 2, 'max_retries': 3, 'expected_codes': '2xx'},
     'expected_codes'),
]


@pytest.mark.parametrize('what, table, data, message', CASES,
                         ids=[c[0] for c in CASES])
def test_bad_lb_input_is_refused_and_nothing_written(nb, site, what, table,
                                                     data, message):
    site['udp_pool'] = nb.create('pool', {'loadbalancer_id': site['lb'].id,
                                          'protocol': 'UDP',
                                          'lb_algorithm': 'SOURCE_IP'})
    assert_refused(nb, table, data(site), message)


def test_dfctl_loadbalancer_tree(nb, site, dfctl):
    lb = site['lb']
    out = dfctl('--json', 'loadbalancer', 'show', 'web').stdout
    assert json.loads(out)['vip_port_id'] == lb.vip_port_id
    dfctl('member', 'create', '--pool-id', site['pool'].id, '--address',
          '10.0.0.9', '--protocol-port', '80', '--weight', '2')
    before = snapshot(nb)
    bad = dfctl('member', 'create', '--pool-id', site['pool'].id,
                '--address', '10.0.0.9', '--protocol-port', '80',
                '--weight', '300', expect=1)
    assert 'member.weight: must be <= 256' in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert snapshot(nb) == before
    tree = json.loads(dfctl('--json', 'loadbalancer', 'status',
                            'web').stdout)['loadbalancer']
    [listener] = tree['listeners']
    [member] = listener['pools'][0]['members']
    assert (member['address'], member['weight'],
            member['operating_status']) == ('10.0.0.9', 2, 'NO_MONITOR')
    nb.patch('member', nb.list('member')[0].id, {'operating_status': 'ERROR'})
    text = dfctl('loadbalancer', 'status', 'web').stdout
    assert 'member 10.0.0.9:80 weight 2 ERROR' in text
    assert text.splitlines()[0].endswith(' ERROR')
    dfctl('loadbalancer', 'delete', 'web', '--cascade')
    assert nb.list('member') == [] and nb.list('loadbalancer') == []
