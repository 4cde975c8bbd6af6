"""IGMP and MLD for the multicast app: what a host's message means for
forwarding, and the queries a snooping querier sends.

Forwarding is per group, not per source: a host that wants any source of
a group (IGMPv3/MLDv2 EXCLUDE, or an INCLUDE list that is not empty) is a
member; one that wants none (v1/v2 leave, MLDv1 done, v3 TO_IN or IS_IN
with no sources) is not. Source lists beyond that are the host stack's
to filter (Linux filters per socket anyway); BLOCK_OLD_SOURCES changes
nothing here. Link-local groups (224.0.0.0/24, ff02::/16) are flooded,
so their reports (every IPv6 host reports its solicited-node group) are
not memberships.

Queries are IGMPv3 (RFC 3376, IPv4 Router Alert option, TTL 1) and MLDv2
(RFC 3810, from a link-local address, hop limit 1, Router Alert in a
hop-by-hop header): hosts in v2/MLDv1 mode answer them too.
"""
import collections
import ipaddress

JOIN, LEAVE, FAST_LEAVE = 'join', 'leave', 'fast-leave'
IGMP_PROTO = 2
ALL_HOSTS_V4, ALL_HOSTS_V6 = '224.0.0.1', 'ff02::1'
LINK_LOCAL_V4 = ipaddress.ip_network('224.0.0.0/24')
LINK_LOCAL_V6 = ipaddress.ip_network('ff02::/16')
# IGMP message types (RFC 3376 4, RFC 2236 2.1) and MLD ICMPv6 types.
IGMP_QUERY, IGMP_V1_REPORT, IGMP_V2_REPORT, IGMP_LEAVE, IGMP_V3_REPORT = \
    0x11, 0x12, 0x16, 0x17, 0x22
MLD_QUERY, MLD_V1_REPORT, MLD_DONE, MLD_V2_REPORT = 130, 131, 132, 143
MLD_TYPES = (MLD_QUERY, MLD_V1_REPORT, MLD_DONE, MLD_V2_REPORT)
# v3 / MLDv2 group record types (RFC 3376 4.2.12).
IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK = 1, 2, 3, 4, 5, 6
ROUTER_ALERT_V4 = b'\x94\x04\x00\x00'

Event = collections.namedtuple('Event', 'kind group')


def is_link_local(group):
    addr = ipaddress.ip_address(group)
    return addr in (LINK_LOCAL_V4 if addr.version == 4 else LINK_LOCAL_V6)


def _record_event(rtype, address, sources):
    if rtype in (IS_EX, TO_EX) or (rtype in (IS_IN, TO_IN, ALLOW)
                                   and sources):
        return Event(JOIN, address)
    if rtype in (IS_IN, TO_IN):
        return Event(FAST_LEAVE, address)
    return None             # BLOCK: still a member of the group


def events(data):
    """The membership events in a frame (IGMP or MLD, os-ken parsed):
    ``join``, ``leave`` (v1/v2 leave or MLDv1 done: the group is
    queried before the port goes) or ``fast-leave`` (v3/MLDv2 record
    wanting no source: the port goes at once); link-local groups left
    out. Queries and anything else: []."""
    from os_ken.lib.packet import icmpv6, igmp, packet
    pkt = packet.Packet(bytes(data))
    out = []
    # os-ken's v3 classes derive from its v1/v2 one: ask for them first.
    v3 = pkt.get_protocol(igmp.igmpv3_report)
    v1v2 = pkt.get_protocol(igmp.igmp)
    mld = pkt.get_protocol(icmpv6.icmpv6)
    if v3 is not None:
        for record in v3.records or ():
            out.append(_record_event(record.type_, record.address,
                                     record.srcs))
    elif v1v2 is not None and type(v1v2) is igmp.igmp:
        if v1v2.msgtype in (IGMP_V1_REPORT, IGMP_V2_REPORT):
            out.append(Event(JOIN, v1v2.address))
        elif v1v2.msgtype == IGMP_LEAVE:
            out.append(Event(LEAVE, v1v2.address))
    elif mld is not None and mld.type_ in (MLD_V1_REPORT, MLD_DONE):
        out.append(Event(JOIN if mld.type_ == MLD_V1_REPORT else LEAVE,
                         mld.data.address))
    elif mld is not None and mld.type_ == MLD_V2_REPORT:
        for record in mld.data.records or ():
            out.append(_record_event(record.type_, record.address,
                                     record.srcs))
    return [e for e in out if e is not None and _valid_group(e.group)]


def _valid_group(group):
    try:
        addr = ipaddress.ip_address(group)
    except ValueError:
        return False
    return addr.is_multicast and not is_link_local(group)


def encode_time(value):
    """RFC 3376 4.1.1 / 4.1.7 code of a time in units (max resp code in
    tenths of a second, QQIC in seconds): itself below 128, else the
    floating point form (1 exp(3) mant(4))."""
    if value < 128:
        return value
    for exp in range(8):
        mant = (value >> (exp + 3)) - 16
        if 0 <= mant < 16:
            return 0x80 | exp << 4 | mant
    return 0xff


def multicast_mac(group):
    addr = ipaddress.ip_address(group)
    if addr.version == 4:
        low = int(addr) & 0x7fffff
        return '01:00:5e:%02x:%02x:%02x' % (
            low >> 16, low >> 8 & 0xff, low & 0xff)
    low = int(addr) & 0xffffffff
    return '33:33:' + ':'.join('%02x' % b for b in low.to_bytes(4, 'big'))


def link_local_of(mac):
    """The EUI-64 link-local IPv6 address of a MAC (MLD queries must come
    from one: hosts drop others)."""
    b = bytes(int(x, 16) for x in mac.split(':'))
    eui = bytes([b[0] ^ 0x02]) + b[1:3] + b'\xff\xfe' + b[3:]
    return str(ipaddress.IPv6Address(b'\xfe\x80' + bytes(6) + eui))


def igmp_query(mac, source, robustness, interval, response, group=None):
    """An IGMPv3 query frame: general (group None: to all hosts, max
    response ``response`` seconds) or group-specific (to the group);
    robustness and interval (s) are told to the hosts (QRV, QQIC)."""
    from os_ken.lib.packet import igmp, ipv4
    from dragonflow.controller import packets
    dst = group or ALL_HOSTS_V4
    query = igmp.igmpv3_query(
        maxresp=encode_time(int(response * 10)), address=group or '0.0.0.0',
        qrv=min(robustness, 7), qqic=encode_time(interval))
    ip = ipv4.ipv4(src=source, dst=dst, proto=IGMP_PROTO, ttl=1,
                   option=ROUTER_ALERT_V4, header_length=6)
    return packets.frame(mac, multicast_mac(dst), ip, query)


def mld_query(mac, robustness, interval, response, group=None):
    """An MLDv2 query frame, general or group-specific (as igmp_query),
    from the MAC's link-local address."""
    from os_ken.lib.packet import icmpv6, ipv6
    from dragonflow.controller import packets
    dst = group or ALL_HOSTS_V6
    query = icmpv6.icmpv6(type_=MLD_QUERY, data=icmpv6.mldv2_query(
        maxresp=min(int(response * 1000), 0x7fff), address=group or '::',
        qrv=min(robustness, 7), qqic=encode_time(interval)))
    # Hop-by-hop header: Router Alert (value 0: MLD), PadN.
    hop_by_hop = ipv6.hop_opts(nxt=58, data=[
        ipv6.option(type_=5, len_=2, data=b'\x00\x00'),
        ipv6.option(type_=1, len_=0, data=b'')])
    ip = ipv6.ipv6(src=link_local_of(mac), dst=dst, nxt=0, hop_limit=1,
                   ext_hdrs=[hop_by_hop])
    return packets.frame(mac, multicast_mac(dst), ip, query)
