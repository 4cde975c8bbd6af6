"""Every flow the apps compute for the world of world.py goes to the
switch with each match field after its prerequisites, as OpenFlow 1.3
requires (OVS refuses the flow otherwise: a bad-prerequisite error, the
flow missing, seen with ``nw_ttl``, which os-ken orders before
``eth_type``)."""
import types

from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from dragonflow.controller import ofswitch
from test_golden_flows import FLAVOURS, computed

NEEDS_ETH_TYPE = ('ip_proto', 'ipv4_src', 'ipv4_dst', 'ipv6_src', 'ipv6_dst',
                  'nw_ttl', 'arp_op', 'arp_spa', 'arp_tpa', 'arp_sha',
                  'arp_tha', 'ip_dscp', 'ipv6_nd_target')
NEEDS_IP_PROTO = ('tcp_src', 'tcp_dst', 'udp_src', 'udp_dst', 'sctp_src',
                  'sctp_dst', 'icmpv4_type', 'icmpv4_code', 'icmpv6_type',
                  'icmpv6_code', 'ipv6_nd_target')
DP = types.SimpleNamespace(ofproto=ofproto_v1_3,
                           ofproto_parser=ofproto_v1_3_parser)


def wire_order(flow):
    buf = bytearray()
    ofswitch._match(ofproto_v1_3_parser, flow).serialize(buf, 0)
    match = ofproto_v1_3_parser.OFPMatch.parser(bytes(buf), 0)
    return [name for name, _ in match._fields2]


def test_every_flow_lists_prerequisites_first():
    bad = []
    for flavour, names in FLAVOURS.items():
        for app, keyed in computed(names).items():
            for _, flows in keyed:
                for flow in flows:
                    order = wire_order(flow)
                    for needed, fields in (('eth_type', NEEDS_ETH_TYPE),
                                           ('ip_proto', NEEDS_IP_PROTO)):
                        for field in fields:
                            if field in order and needed in order and \
                                    order.index(needed) > order.index(field):
                                bad.append((app, field, order))
    assert not bad, bad[:5]
