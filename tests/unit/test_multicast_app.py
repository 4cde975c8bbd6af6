"""IGMP/MLD snooping without a switch: what each host message means
(controller/igmp.py), the queries the agent sends parsed back, and the
multicast app's handling of packet-ins and ticks on the world of
world.py (vm1, local, on the snooping network ``net``)."""
import types

import pytest
from os_ken.lib.packet import icmpv6, igmp as osken_igmp, ipv4, ipv6, packet

import world
from dragonflow.controller import igmp
from dragonflow.controller import packet_in
from dragonflow.controller import pipeline as pl
from dragonflow.controller.apps import multicast
from test_packet_ins import frame

VM1_PORT = 1    # world.OFPORTS['vm1']


def igmp_frame(message, dst='224.0.0.22'):
    return frame(ipv4.ipv4(src='10.0.0.11', dst=dst, proto=2, ttl=1),
                 message, dst=igmp.multicast_mac(dst))


def v3_report(*records):
    return igmp_frame(osken_igmp.igmpv3_report(records=[
        osken_igmp.igmpv3_report_group(type_=t, address=a, srcs=s,
                                       num=len(s))
        for t, a, s in records]))


def mld_frame(kind, data, dst='ff02::16'):
    return frame(ipv6.ipv6(src='fe80::1', dst=dst, nxt=58, hop_limit=1),
                 icmpv6.icmpv6(type_=kind, data=data),
                 dst=igmp.multicast_mac(dst))


@pytest.mark.parametrize('data, expected', [
    (igmp_frame(osken_igmp.igmp(msgtype=0x16, address='239.1.1.1'),
                '239.1.1.1'), [('join', '239.1.1.1')]),
    (igmp_frame(osken_igmp.igmp(msgtype=0x12, address='239.1.1.1'),
                '239.1.1.1'), [('join', '239.1.1.1')]),
    (igmp_frame(osken_igmp.igmp(msgtype=0x17, address='239.1.1.1'),
                '224.0.0.2'), [('leave', '239.1.1.1')]),
    (v3_report((igmp.IS_EX, '239.1.1.1', []), (igmp.TO_IN, '239.2.2.2', []),
               (igmp.ALLOW, '239.3.3.3', ['10.0.0.9']),
               (igmp.BLOCK, '239.4.4.4', ['10.0.0.9']),
               (igmp.TO_IN, '239.5.5.5', ['10.0.0.9'])),
     [('join', '239.1.1.1'), ('fast-leave', '239.2.2.2'),
      ('join', '239.3.3.3'), ('join', '239.5.5.5')]),
    # Link-local groups are flooded: their reports are no membership.
    (v3_report((igmp.IS_EX, '224.0.0.251', [])), []),
    (mld_frame(igmp.MLD_V1_REPORT, icmpv6.mld(address='ff15::1'),
               'ff15::1'), [('join', 'ff15::1')]),
    (mld_frame(igmp.MLD_DONE, icmpv6.mld(address='ff15::1'), 'ff02::2'),
     [('leave', 'ff15::1')]),
    (mld_frame(igmp.MLD_V2_REPORT, icmpv6.mldv2_report(records=[
        icmpv6.mldv2_report_group(type_=igmp.TO_EX, address='ff15::1'),
        icmpv6.mldv2_report_group(type_=igmp.IS_EX,
                                  address='ff02::1:ff00:11'),
        icmpv6.mldv2_report_group(type_=igmp.TO_IN, address='ff15::2')])),
     [('join', 'ff15::1'), ('fast-leave', 'ff15::2')]),
    # A query from a VM means nothing here.
    (igmp_frame(osken_igmp.igmpv3_query(), '224.0.0.1'), []),
])
def test_what_a_host_message_means(data, expected):
    assert [tuple(e) for e in igmp.events(data)] == expected


def test_queries_parse_back_as_rfc_3376_and_3810_say():
    v4 = packet.Packet(igmp.igmp_query('02:00:00:00:df:02', '10.0.0.1', 2,
                                       125, 10))
    ip = v4.get_protocol(ipv4.ipv4)
    query = v4.get_protocol(osken_igmp.igmpv3_query)
    assert (ip.dst, ip.ttl, bytes(ip.option)) == ('224.0.0.1', 1,
                                                  igmp.ROUTER_ALERT_V4)
    assert (query.address, query.maxresp, query.qrv, query.qqic) == \
        ('0.0.0.0', 100, 2, 125)
    specific = packet.Packet(igmp.igmp_query(
        '02:00:00:00:df:02', '10.0.0.1', 2, 125, 1, '239.1.1.1'))
    assert specific.get_protocol(ipv4.ipv4).dst == '239.1.1.1'
    assert specific.get_protocol(osken_igmp.igmpv3_query).maxresp == 10
    v6 = packet.Packet(igmp.mld_query('02:00:00:00:df:02', 2, 125, 10))
    ip6 = v6.get_protocol(ipv6.ipv6)
    assert (ip6.src, ip6.dst, ip6.hop_limit) == ('fe80::ff:fe00:df02',
                                                 'ff02::1', 1)
    assert ip6.ext_hdrs[0].data[0].type_ == 5        # router alert
    assert v6.get_protocol(icmpv6.icmpv6).data.maxresp == 10000


@pytest.mark.parametrize('value, code', [(100, 100), (127, 127),
                                         (250, 0x8f), (3600, 0xcc)])
def test_times_above_127_use_the_floating_point_code(value, code):
    assert igmp.encode_time(value) == code
    exp, mant = code >> 4 & 7, code & 0xf
    decoded = value if code < 128 else (mant | 0x10) << (exp + 3)
    assert decoded <= value < decoded + (1 << (exp + 3))


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def snooper():
    state = world.state()
    clock = Clock()
    app = multicast.MulticastApp(None, clock)
    sent = []

    def report(data):
        msg = types.SimpleNamespace(
            cookie=app.cookie, table_id=pl.MCAST_LOOKUP,
            reason=packet_in.OFPR_ACTION,
            match={'reg6': 11, 'in_port': VM1_PORT}, data=data)
        app.membership_message(state, msg, lambda port, out: sent.append(
            (port, packet.Packet(out))))
    return types.SimpleNamespace(state=state, clock=clock, app=app,
                                 sent=sent, report=report)


KEY = ('net', '239.1.1.1')


def test_a_join_then_a_v2_leave_waits_for_the_group_query(snooper):
    app = snooper.app
    snooper.report(v3_report((igmp.TO_EX, '239.1.1.1', [])))
    assert app.members.ports_of(KEY) == ['vm1']
    assert app.members.take() == {KEY: ['vm1']}
    snooper.report(igmp_frame(osken_igmp.igmp(msgtype=0x17,
                                              address='239.1.1.1'),
                              '224.0.0.2'))
    # A group-specific query to the port, which stays for 2 x 1 s.
    (port, query), = snooper.sent
    assert port == VM1_PORT
    assert query.get_protocol(osken_igmp.igmpv3_query).address == \
        '239.1.1.1'
    assert app.members.ports_of(KEY) == ['vm1']
    snooper.clock.now += 2.5
    app.members.expire(snooper.clock())
    assert app.members.take() == {KEY: []}


def test_a_v3_leave_removes_the_port_at_once(snooper):
    snooper.report(v3_report((igmp.IS_EX, '239.1.1.1', [])))
    snooper.report(v3_report((igmp.TO_IN, '239.1.1.1', [])))
    assert snooper.app.members.ports_of(KEY) == []
    assert snooper.sent == []


def test_members_age_out_without_reports(snooper):
    app = snooper.app
    snooper.report(v3_report((igmp.IS_EX, '239.1.1.1', [])))
    app.members.take()
    # Group membership interval with the defaults: 2 x 125 + 10 s.
    snooper.clock.now += 259
    app.members.expire(snooper.clock())
    assert app.members.ports_of(KEY) == ['vm1']
    snooper.clock.now += 2
    app.members.expire(snooper.clock())
    assert app.members.take() == {KEY: []}


def test_each_local_port_is_queried_once_per_interval(snooper):
    state, app = snooper.state, snooper.app
    sent = []
    app.tick(state, lambda port, out: sent.append(port))
    local = [state.wire(p.id)[0] for net in ('net', 'net2')
             for p in state.local_ports(net)]
    # An IGMP and an MLD query to each local port of the snooping
    # networks (a subport's go through its parent's interface).
    assert sorted(sent) == sorted(list(local) * 2)
    sent.clear()
    snooper.clock.now += 124
    app.tick(state, lambda port, out: sent.append(port))
    assert sent == []
    snooper.clock.now += 1
    app.tick(state, lambda port, out: sent.append(port))
    assert len(sent) == 2 * len(local)


def test_reports_beyond_the_rate_are_dropped(snooper):
    app = snooper.app
    for i in range(int(multicast.REPORT_RATE) + 50):
        snooper.report(v3_report((igmp.IS_EX, f'239.0.{i // 250}.{i % 250}',
                                  [])))
    assert app.suppressed == 50
    snooper.clock.now += 1
    snooper.report(v3_report((igmp.IS_EX, '239.9.9.9', [])))
    assert app.members.ports_of(('net', '239.9.9.9')) == ['vm1']


def test_a_restarted_agent_adopts_its_records_until_they_age_out(snooper):
    state, app = snooper.state, snooper.app
    app.tick(state, lambda port, out: None)
    # world.py has ch1's record of 239.1.1.1 with vm1.
    assert app.members.ports_of(KEY) == ['vm1']
    assert app.written[KEY] == ['vm1']
    snooper.clock.now += 261
    app.tick(state, lambda port, out: None)
    assert app.members.take()[KEY] == []
