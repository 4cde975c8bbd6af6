"""The fwaas app's pure parts: rule priorities that leave room for
inserts, the answers to rejected packets, the keys a change touches."""
import pytest

import world
from dragonflow.controller import apps as df_apps
from dragonflow.controller.apps import fwaas


def _ids(n, prefix='r'):
    return [f'{prefix}{i}' for i in range(n)]


def _decreasing(prios, ids):
    values = [prios[i] for i in ids]
    return all(a > b for a, b in zip(values, values[1:]))


def test_an_insert_keeps_every_other_rule_priority():
    ids = _ids(1000)
    first = fwaas.assign(ids, {})
    assert _decreasing(first, ids)
    assert min(first.values()) >= fwaas.BOTTOM
    assert max(first.values()) <= fwaas.TOP
    inserted = ids[:500] + ['new'] + ids[500:]
    second = fwaas.assign(inserted, first)
    assert _decreasing(second, inserted)
    assert {r: second[r] for r in ids} == first


def test_removal_and_a_move_keep_the_rest():
    ids = _ids(10)
    first = fwaas.assign(ids, {})
    moved = ids[1:5] + [ids[0]] + ids[5:]
    second = fwaas.assign(moved, first)
    assert _decreasing(second, moved)
    changed = {r for r in ids if second[r] != first[r]}
    assert len(changed) == 1
    removed = ids[:3] + ids[4:]
    assert fwaas.assign(removed, first) == {r: first[r] for r in removed}


def test_a_full_gap_spreads_the_policy_again():
    ids = ['a', 'b']
    prios = fwaas.assign(ids, {'a': 500, 'b': 499})
    assert prios['a'] == 500 and prios['b'] == 499
    crowded = fwaas.assign(['a', 'x', 'b'], {'a': 500, 'b': 499})
    assert _decreasing(crowded, ['a', 'x', 'b'])


def _frame(l4, v6=False, payload=None):
    """An Ethernet frame from fa:..:01 / 10.0.0.1 (fd00::1) to fa:..:02 /
    10.0.0.2 (fd00::2) carrying l4."""
    from os_ken.lib.packet import ethernet, ipv4, ipv6, packet
    number = 6 if l4.protocol_name == 'tcp' else 17
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(
        src='fa:16:3e:00:00:01', dst='fa:16:3e:00:00:02',
        ethertype=0x86dd if v6 else 0x0800))
    if v6:
        pkt.add_protocol(ipv6.ipv6(src='fd00::1', dst='fd00::2', nxt=number))
    else:
        pkt.add_protocol(ipv4.ipv4(src='10.0.0.1', dst='10.0.0.2',
                                   proto=number))
    pkt.add_protocol(l4)
    if payload:
        pkt.add_protocol(payload)
    pkt.serialize()
    return pkt.data


def _tcp_syn(v6=False):
    from os_ken.lib.packet import tcp
    return _frame(tcp.tcp(src_port=40000, dst_port=80, seq=1000,
                          bits=tcp.TCP_SYN), v6)


def _udp(v6=False):
    from os_ken.lib.packet import udp
    return _frame(udp.udp(src_port=5000, dst_port=53), v6, b'query')


def test_a_rejected_syn_gets_a_rst_from_its_destination():
    from os_ken.lib.packet import ipv4, ipv6, packet, tcp
    for v6 in (False, True):
        answer = packet.Packet(fwaas.rejection(_tcp_syn(v6)))
        ip = answer.get_protocol(ipv6.ipv6 if v6 else ipv4.ipv4)
        seg = answer.get_protocol(tcp.tcp)
        assert (ip.src, ip.dst) == (('fd00::2', 'fd00::1') if v6 else
                                    ('10.0.0.2', '10.0.0.1'))
        assert (seg.src_port, seg.dst_port) == (80, 40000)
        assert seg.bits == tcp.TCP_RST | tcp.TCP_ACK and seg.ack == 1001
        assert fwaas.rejection(answer.data) is None      # never a RST


def test_rejected_udp_gets_icmp_port_unreachable():
    from os_ken.lib.packet import icmp, ipv4, packet
    data = _udp()
    answer = packet.Packet(fwaas.rejection(data))
    message = answer.get_protocol(icmp.icmp)
    assert (message.type, message.code) == (3, 3)
    assert answer.get_protocol(ipv4.ipv4).dst == '10.0.0.1'
    assert fwaas.five_tuple(data) == ('udp', '10.0.0.1', 5000,
                                      '10.0.0.2', 53)
    assert fwaas.rejection(answer.data) is None      # never about an error


def test_an_insert_touches_only_the_groups_using_the_policy():
    state = world.state()
    app = fwaas.FwaasApp()
    keys = app.keys(state)
    assert app.key('rules', ('fwg', 'ingress', 'port')) in keys
    assert app.key('rules', ('edge', 'egress', 'router')) in keys
    # fwg's egress policy has one rule; a rule added there touches fwg
    # only, and changes one flow.
    before = app.key_flows(state, app.key('rules', ('fwg', 'egress',
                                                    'port')))
    rule = world.obj('firewall_rule', id='fw-new', protocol='tcp',
                     destination_port='443', action='deny')
    state.put(rule)
    policy = state.get('firewall_policy', 'fw-egress')
    new = world.obj('firewall_policy', id='fw-egress',
                    firewall_rules=['fw-new', 'fw-out'])
    state.put(new)
    touched = app.touched_keys(state, 'firewall_policy', new, policy)
    assert {k[2][0] for k in touched} == {'fwg'}
    after = app.key_flows(state, app.key('rules', ('fwg', 'egress',
                                                   'port')))
    assert len(set(after) - set(before)) == 1
    assert set(before) <= set(after)


def test_a_group_down_filters_nothing():
    state = world.state()
    group = state.get('firewall_group', 'fwg')
    state.put(world.obj('firewall_group', **dict(
        group.to_dict(), admin_state_up=False)))
    app = fwaas.FwaasApp()
    assert not any(k[2] == 'vm1' for k in app.keys(state))
    assert app.key_flows(state, app.key('port', 'vm1')) == []


def test_the_app_needs_security_groups():
    with pytest.raises(ValueError, match='fwaas needs security_groups'):
        df_apps.load(['classifier', 'fwaas'])


def test_rejected_udp_over_ipv6_gets_icmpv6_port_unreachable():
    from os_ken.lib.packet import icmpv6, ipv6, packet
    data = _udp(v6=True)
    answer = packet.Packet(fwaas.rejection(data))
    message = answer.get_protocol(icmpv6.icmpv6)
    assert (message.type_, message.code) == (1, 4)
    assert answer.get_protocol(ipv6.ipv6).dst == 'fd00::1'
    assert fwaas.rejection(answer.data) is None
