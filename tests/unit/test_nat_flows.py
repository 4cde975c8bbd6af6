"""NAT flows as data: which flows a port behind a router with a gateway
gets, before and after the gateway's MAC is known."""
import pytest

from dragonflow.controller import pipeline as pl
from dragonflow.controller.apps import nat
from dragonflow.controller.state import LocalState
from dragonflow.model import base


def _obj(table, **data):
    return base.model_for(table).from_dict(data)


class _Controller:
    def __init__(self, state):
        self.state = state
        self.programmed = set()
        self.posted = []

    def post(self, kind, payload):
        self.posted.append((kind, payload))


@pytest.fixture
def state():
    s = LocalState('ch1')
    s.put(_obj('chassis', id='ch1', ip='192.0.2.1',
               external_host_ip='172.24.4.101'))
    s.put(_obj('logical_switch', id='public', unique_key=2, external=True,
               network_type='flat', physical_network='physnet1'))
    s.put(_obj('subnet', id='pub4', network_id='public',
               cidr='172.24.4.0/24', gateway_ip='172.24.4.1'))
    s.put(_obj('logical_switch', id='net', unique_key=9, segmentation_id=5))
    s.put(_obj('subnet', id='sub', network_id='net', cidr='10.0.0.0/24',
               gateway_ip='10.0.0.1'))
    s.put(_obj('logical_router', id='r', unique_key=4,
               external_gateway={'network_id': 'public',
                                 'ip': '172.24.4.2'}))
    s.put(_obj('logical_router_port', id='rp', router_id='r',
               subnet_id='sub', network_id='net', ip='10.0.0.1',
               mac='fa:16:3e:00:00:01', unique_key=30))
    s.put(_obj('logical_port', id='vm', network_id='net', unique_key=11,
               ips=['10.0.0.5'], macs=['fa:16:3e:00:00:05']))
    s.ofports['vm'] = 7
    s.provider_ofports['physnet1'] = 3
    return s


def _flows(app, state):
    """The tenant network's NAT flows and its port's."""
    return app.network_flows(state, state.network('net')) + \
        app.port_flows(state, state.get('logical_port', 'vm'))


def test_nat_mac_is_derived_from_the_address():
    assert nat.nat_mac('172.24.4.101') == 'fa:16:3f:18:04:65'


def test_snat_waits_for_the_gateway_mac(state):
    app = nat.APP()
    tables = {f.table for f in _flows(app, state)}
    assert pl.EGRESS_NAT_OUT not in tables        # no way out yet
    state.neighbours[('public', '172.24.4.1')] = 'aa:bb:cc:00:00:01'
    flows = _flows(app, state)
    commit = [f for f in flows if f.table == pl.EGRESS_NAT_OUT and
              f.priority == 50]
    assert commit[0].actions == (('ct', pl.NAT_ZONE, pl.EGRESS_NAT_OUT, True,
                                  ('src', '172.24.4.101'), 11),)
    out = [f for f in flows if f.table == pl.EGRESS_NAT_OUT and
           f.priority == 100][0]
    assert ('set_field', 'eth_dst', 'aa:bb:cc:00:00:01') in out.actions
    assert out.goto == pl.EGRESS_PROVIDER


def test_floating_ip_replaces_the_chassis_address(state):
    state.put(_obj('floating_ip', id='f', floating_network_id='public',
                   floating_ip_address='172.24.4.50', port_id='vm',
                   fixed_ip_address='10.0.0.5'))
    state.neighbours[('public', '172.24.4.1')] = 'aa:bb:cc:00:00:01'
    flows = _flows(nat.APP(), state)
    actions = [a for f in flows for a in f.actions if a[0] == 'ct']
    assert ('ct', pl.NAT_ZONE, pl.EGRESS_NAT_OUT, True,
            ('src', '172.24.4.50'), 11) in actions
    assert ('ct', pl.NAT_ZONE, pl.INGRESS_NAT_ROUTE, True,
            ('dst', '10.0.0.5'), 11) in actions
    arp = [f for f in flows if f.table == pl.INGRESS_NAT and
           dict(f.match).get('arp_tpa') == '172.24.4.50']
    assert arp and arp[0].actions[-1] == ('in_port',)


def test_gateway_is_resolved_then_announced_addresses(state):
    controller = _Controller(state)
    controller.programmed = {'public', 'net'}
    app = nat.APP(controller)
    sent = []
    app.tick(state, lambda port, data: sent.append((port, data)))
    # One ARP request for the gateway, one announcement of our address.
    assert len(sent) == 2 and all(port == 3 for port, _ in sent)
