"""The logical trace over the unit world (tests/unit/world.py): each
stage names what decides, and the verdict is what the pipeline does."""
import pytest

from dragonflow import errors
from dragonflow.controller import pipeline as pl
from dragonflow.controller.state import LocalState
from dragonflow.trace import firewall as fwt
from dragonflow.trace import logical as lt

import world


def view(*changes, firewall=False):
    """The world, bound as its chassis see it; its firewall groups only
    when asked (the other tests trace around them)."""
    s = LocalState(None)
    for o in world.objects():
        if o.table in fwt.TABLES and not firewall:
            continue
        if o.table == 'logical_port' and o.id in world.LOCAL_PORTS and \
                o.id != 'child':
            o.binding_chassis = 'ch1'
        s.put(o)
    for change in changes:
        change(s)
    return s


def run(s=None, **packet):
    return lt.trace(s or view(), lt.Packet(**packet))


def stages(t):
    return [step.stage for step in t.steps]


def test_same_network_across_chassis_is_delivered_through_the_tunnel():
    t = run(src_port='vm1', to_port='vm2')
    assert t.verdict == 'delivered' and t.delivered
    assert stages(t) == ['classifier', 'port_security', 'egress_sg',
                         'arp_responder', 'l2_lookup', 'egress',
                         'ingress_lookup', 'ingress_sg', 'ingress_dispatch']
    assert 'geneve tunnel, VNI 5, to chassis ch2 (192.0.2.2)' in \
        t.steps[5].text
    assert 'web-out' in t.steps[2].text       # the rule that allows it
    assert 'web-peers' in t.steps[7].text     # icmp from a group member
    assert [h['chassis'] for h in t.hops] == ['ch1', 'ch2']
    assert t.hops[0]['ct'] == ['trk,new'] and t.hops[1]['ct'] == ['trk,new']
    assert t.headers['dl_dst'] == world.mac(12)
    assert t.headers['nw_src'] == '10.0.0.5'
    assert t.summary.startswith('icmp type 8 10.0.0.5 -> 10.0.0.6: '
                                'delivered')


def test_missing_ingress_rule_names_the_groups_and_the_service():
    t = run(src_port='vm1', to_port='vm2', protocol='tcp', dport=80)
    assert t.verdict == 'dropped'
    last = t.last
    assert last.table == pl.INGRESS_SG and last.chassis == 'ch2'
    assert 'no ingress rule of groups web matches tcp/80 from 10.0.0.5' \
        in last.text
    assert ('security_group', 'web', None) in last.objects
    assert 'dropped at 110 (ingress_sg)' in t.summary


def test_spoofed_source_is_dropped_by_port_security():
    t = run(src_port='vm1', to_port='vm2', src_ip='10.0.0.9')
    assert t.verdict == 'dropped' and t.last.table == pl.PORT_SECURITY
    assert 'port_security of vm1: 10.0.0.9 is not one of its addresses ' \
        '(10.0.0.5, fd00:1::5; allowed pairs: 10.0.0.200)' in t.last.text


def test_allowed_address_pair_passes_port_security():
    t = run(src_port='vm1', to_port='vm2', src_ip='10.0.0.200')
    assert t.steps[1].verdict == 'pass'


def test_routed_to_another_network_decrements_ttl():
    t = run(src_port='vm1', to_port='vm3')
    assert t.verdict == 'delivered'
    routed = next(s for s in t.steps if s.table == pl.L3_LOOKUP)
    assert 'interface rp2 (10.0.1.0/24) -> port vm3' in routed.text
    assert 'TTL 64 -> 63' in routed.text
    assert t.headers['dl_dst'] == world.mac(0xa1)      # the router's MAC
    assert 'local on ch1' in t.steps[-3].text
    assert 'not filtered' in t.steps[-2].text          # vm3: no groups


def test_address_no_port_holds_gets_host_unreachable():
    t = run(src_port='vm1', to_ip='10.0.1.99')
    assert t.verdict == 'dropped' and t.last.table == pl.L3_LOOKUP
    assert 'no port of subnet sub2 (10.0.1.0/24) has 10.0.1.99' in \
        t.last.text


def test_extra_route_goes_to_its_next_hop_port():
    t = run(src_port='vm1', to_ip='192.168.9.4')
    hop = next(s for s in t.steps if s.table == pl.L3_LOOKUP)
    assert 'extra route 192.168.9.0/24 via 10.0.1.7 -> port vm3' in hop.text
    assert t.verdict == 'delivered'


def test_external_address_leaves_snated_to_the_floating_ip():
    t = run(src_port='vm1', to_ip='8.8.8.8')
    assert t.verdict == 'out' and t.delivered
    snat = next(s for s in t.steps if s.table == pl.EGRESS_NAT_OUT)
    assert 'SNAT 10.0.0.5 -> 172.24.4.50 (floating IP fip)' in snat.text
    assert t.hops[0]['ct'] == ['trk,new', 'trk,new']


def test_floating_ip_of_an_unbound_port_is_dropped_with_why():
    def unbind(s):
        vm1 = s.get('logical_port', 'vm1')
        vm1.binding_chassis = None
        s.put(vm1)
    t = run(view(unbind), src_port='vm3', to_ip='172.24.4.50')
    assert t.verdict == 'dropped' and t.last.table == pl.INGRESS_NAT
    assert 'port vm1, which is bound to no chassis' in t.last.text


def test_router_without_interface_on_the_source_subnet():
    def detach(s):
        s.remove('logical_router_port', 'rp')
    t = run(view(detach), src_port='vm1', to_port='vm3')
    assert t.verdict == 'dropped' and t.last.table == pl.L2_LOOKUP
    assert 'has no router interface: nothing routes it' in t.last.text


def test_trunk_subport_by_vlan():
    t = run(src_port='parent', vlan=10, to_port='vm1', protocol='tcp',
            dport=22)
    assert 'VLAN 10 on trunk parent parent -> subport child' in \
        t.steps[0].text
    assert t.verdict == 'delivered'
    bad = run(src_port='parent', vlan=11, to_port='vm1')
    assert bad.verdict == 'dropped' and 'no trunk subport on VLAN 11' in \
        bad.last.text


def test_chain_classifier_is_named():
    t = run(src_port='vm1', to_port='vm2', protocol='tcp', dport=80)
    sfc = next(s for s in t.steps if s.table == pl.SFC)
    assert 'classified by fc: steered by port chain pc' in sfc.text


def test_provider_network_to_another_chassis():
    t = run(src_port='pv1', to_port='pv2')
    out = next(s for s in t.steps if s.table == pl.EGRESS_PROVIDER)
    assert 'provider network physnet1 VLAN 100' in out.text
    assert t.verdict == 'delivered'


def test_ipv6():
    t = run(src_port='vm1', to_port='vm3', ipv6=True)
    assert t.headers['nw_src'] == 'fd00:1::5' and \
        t.headers['proto'] == 'icmp6'
    assert t.steps[3].stage == 'nd_responder'
    assert t.verdict == 'delivered'


@pytest.mark.parametrize('packet, message', [
    (dict(src_port='nope', to_port='vm2'), 'logical_port nope does not exist'),
    (dict(src_port='vm1', to_ip='203.0.113.9', protocol='sctp'),
     '--protocol sctp'),
    (dict(src_port='vm1'), 'give --to'),
    (dict(src_port='vm3', to_port='vm2', ipv6=True),
     'port vm2 has no IPv6 address'),
    (dict(src_port='vm1', to_port='vm2', src_ip='fd00::1'), 'is IPv6'),
])
def test_bad_requests_are_refused(packet, message):
    with pytest.raises(errors.NbError, match=message):
        run(**packet)


def test_an_address_nothing_routes_is_refused():
    def no_gateway(s):
        r = s.get('logical_router', 'r')
        r.external_gateway = None
        s.put(r)
    with pytest.raises(errors.ValidationError, match='is on no subnet'):
        run(view(no_gateway), src_port='vm1', to_ip='203.0.113.9')


def test_the_routers_own_address_is_answered_by_nothing():
    t = run(src_port='vm1', to_ip='10.0.0.1')
    assert t.verdict == 'dropped' and t.last.table == pl.L3_LOOKUP
    assert "10.0.0.1 is router r's own address" in t.last.text
    assert t.headers['dl_dst'] == world.mac(0xa1)


def test_firewall_groups_name_the_rule_that_decides():
    s = view(firewall=True)
    # vm2 -> vm1 ssh: fwg's ingress policy allows it (10.0.0.0/8), then
    # the security group does.
    t = run(s, src_port='vm2', to_port='vm1', protocol='tcp', dport=22)
    assert t.verdict == 'delivered', t.summary
    step = next(x for x in t.steps if x.table == pl.FW_INGRESS_RULES)
    assert 'rule fw-ssh of firewall policy fw-in' in step.text
    assert 'allows tcp/22' in step.text
    # DNS is rejected: the agent answers.
    t = run(s, src_port='vm2', to_port='vm1', protocol='udp', dport=53)
    assert t.verdict == 'dropped' and t.last.table == pl.FW_INGRESS_RULES
    assert 'rejects' in t.last.text and 'ICMP unreachable' in t.last.text
    # Nothing matches ping: the implicit deny, before the groups.
    t = run(s, src_port='vm2', to_port='vm1')
    assert t.last.table == pl.FW_INGRESS_RULES
    assert 'implicit deny' in t.last.text
    assert ('firewall_group', 'fwg', None) in t.last.objects


def test_a_router_interfaces_egress_policy_filters_what_its_subnet_routes():
    s = view(firewall=True)
    # vm3 (net2, no security groups) to vm1 across the router: rp2's
    # group has fw-in as egress policy, which has nothing for ping.
    t = run(s, src_port='vm3', to_port='vm1')
    assert t.last.table == pl.FW_EGRESS_ROUTER_RULES, t.summary
    assert 'router interface rp2' in t.last.text
    # The unprotected sender goes through conntrack for the firewall.
    assert t.hops[0]['ct'] == ['trk,new']
    # ssh from 10/8 is allowed out of net2 and on to vm1.
    t = run(s, src_port='vm3', to_port='vm1', protocol='tcp', dport=22)
    assert t.verdict == 'delivered', t.summary
