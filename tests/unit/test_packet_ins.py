"""Packet-ins of the world of world.py go through the PacketInRouter to
the app that asked for them, whose answer is parsed back: DHCP, DHCPv6,
neighbour and router solicitations, ICMP errors. No switch: the answer is
what would be sent out."""
import types

import pytest
from os_ken.lib.packet import (dhcp, ethernet, icmp, icmpv6, ipv4, ipv6,
                               packet, udp)

import world
from dragonflow.controller import apps as df_apps
from dragonflow.controller import packet_in
from dragonflow.controller import pipeline as pl

VM1 = world.mac(11)
ROUTER = world.mac(0xa1)


@pytest.fixture
def agent():
    state = world.state()
    apps = df_apps.load([n for n in df_apps.APP_MODULES if n != 'l2_normal'],
                        world.controller(state))
    return state, {a.name: a for a in apps}, packet_in.PacketInRouter(apps)


def frame(*layers, src=VM1, dst='ff:ff:ff:ff:ff:ff'):
    ethertype = 0x86dd if isinstance(layers[0], ipv6.ipv6) else 0x0800
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=dst, src=src, ethertype=ethertype))
    for layer in layers:
        pkt.add_protocol(layer)
    pkt.serialize()
    return bytes(pkt.data)


def deliver(agent, data, app, table, reason=packet_in.OFPR_ACTION, reg6=11,
            in_port=1):
    """Route a packet-in from a flow of app (by its cookie); the packets
    the handler sends, as (ofport, Packet, bytes)."""
    state, apps, router = agent
    msg = types.SimpleNamespace(
        cookie=3 << 32 | apps[app].cookie, table_id=table, reason=reason,
        match={'reg6': reg6, 'in_port': in_port}, data=data)
    found = router.route(msg)
    assert found is not None, 'no app took the packet-in'
    sent = []
    found[1](state, msg, lambda port, out: sent.append(
        (port, packet.Packet(out), bytes(out))))
    return found[0].name, sent


def test_a_dhcp_discover_gets_an_offer_of_the_nb_address(agent):
    discover = dhcp.dhcp(op=dhcp.DHCP_BOOT_REQUEST, chaddr=VM1, xid=7,
                         options=dhcp.options(option_list=[
                             dhcp.option(tag=53, value=b'\x01')]))
    name, sent = deliver(agent, frame(
        ipv4.ipv4(src='0.0.0.0', dst='255.255.255.255', proto=17),
        udp.udp(src_port=68, dst_port=67), discover), 'dhcp', pl.DHCP)
    assert name == 'dhcp' and [port for port, _, _ in sent] == [1]
    offer = sent[0][1].get_protocol(dhcp.dhcp)
    assert offer.yiaddr == '10.0.0.5' and offer.xid == 7
    assert sent[0][1].get_protocol(ethernet.ethernet).dst == VM1


def test_the_same_table_reaches_dhcpv6_only_with_its_cookie(agent):
    solicit = bytes([1, 0, 0, 9]) + b'\x00\x01\x00\x02ab' + \
        b'\x00\x03\x00\x0c' + b'\x00\x00\x00\x01' + bytes(8)
    name, sent = deliver(agent, frame(
        ipv6.ipv6(src='fe80::1', dst='ff02::1:2', nxt=17),
        udp.udp(src_port=546, dst_port=547), solicit, src=world.mac(13)),
        'dhcpv6', pl.DHCP, reg6=13, in_port=3)
    assert name == 'dhcpv6'
    reply = sent[0][1]
    assert reply.get_protocol(ipv6.ipv6).hop_limit == 255
    body = sent[0][2][14 + 40 + 8:]
    assert body[0] == 2                                   # ADVERTISE
    assert bytes.fromhex('fd000002000000000000000000000007') in body


def test_a_neighbour_solicitation_for_the_router_gets_its_na(agent):
    ns = icmpv6.icmpv6(type_=135, data=icmpv6.nd_neighbor(dst='fd00:1::1'))
    name, sent = deliver(agent, frame(
        ipv6.ipv6(src='fd00:1::5', dst='ff02::1:ff00:1', nxt=58), ns),
        'nd_responder', pl.ND_RESPONDER)
    assert name == 'nd_responder'
    answer = sent[0][1]
    na = answer.get_protocol(icmpv6.icmpv6)
    assert na.type_ == 136 and na.data.dst == 'fd00:1::1'
    assert na.data.res & 0b100                           # router flag
    assert answer.get_protocol(ethernet.ethernet).src == ROUTER


def test_a_router_solicitation_goes_to_router_advertisement(agent):
    rs = icmpv6.icmpv6(type_=133, data=icmpv6.nd_router_solicit())
    name, sent = deliver(agent, frame(
        ipv6.ipv6(src='fe80::f816:3eff:fe00:b', dst='ff02::2', nxt=58), rs),
        'router_advertisement', pl.ND_RESPONDER)
    assert name == 'router_advertisement'
    ra = sent[0][1].get_protocol(icmpv6.icmpv6)
    assert ra.type_ == 134 and ra.data.res == 0b01      # O flag: stateless
    assert sent[0][1].get_protocol(ipv6.ipv6).src == 'fe80::f816:3eff:fe00:a1'


def test_an_unknown_address_in_a_router_subnet_is_host_unreachable(agent):
    name, sent = deliver(agent, frame(
        ipv4.ipv4(src='10.0.0.5', dst='10.0.0.99', proto=1),
        icmp.icmp(type_=8, data=icmp.echo(id_=1, seq=1)), dst=ROUTER),
        'router_icmp', pl.L3_LOOKUP)
    error = sent[0][1]
    assert error.get_protocol(icmp.icmp).type == 3
    assert error.get_protocol(icmp.icmp).code == 1
    assert error.get_protocol(ipv4.ipv4).src == '10.0.0.1'


def test_an_expired_ttl_in_a_routing_flow_gets_time_exceeded(agent):
    # The switch raises it from an l3 flow: routed by reason, not cookie.
    name, sent = deliver(agent, frame(
        ipv4.ipv4(src='10.0.0.5', dst='10.0.1.7', proto=17, ttl=1),
        udp.udp(src_port=33434, dst_port=33434), dst=ROUTER),
        'l3', pl.L3_LOOKUP, reason=packet_in.OFPR_INVALID_TTL)
    assert name == 'router_icmp'
    assert sent[0][1].get_protocol(icmp.icmp).type == 11
