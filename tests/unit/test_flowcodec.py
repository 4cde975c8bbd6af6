"""The fast FlowMod encoder produces exactly os-ken's bytes."""
import types

import pytest

pytest.importorskip('os_ken')

from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser  # noqa: E402

from dragonflow.controller import flowcodec, ofswitch  # noqa: E402
from dragonflow.controller.flows import Flow  # noqa: E402


@pytest.fixture
def dp():
    return types.SimpleNamespace(ofproto=ofproto_v1_3,
                                 ofproto_parser=ofproto_v1_3_parser, xid=0)


def reference(dp, flow, command, cookie, xid):
    msg = ofswitch.flow_mod(dp, flow, cookie) if command == 'add' else \
        ofswitch.flow_delete(dp, flow)
    msg.set_xid(xid)
    msg.serialize()
    return bytes(msg.buf)


FLOWS = [
    # A flood: each copy resubmitted to the ingress stages.
    Flow(55, 50, {'metadata': 9, 'eth_dst': ('01:00:00:00:00:00',
                                             '01:00:00:00:00:00')},
         [('set_field', 'reg4', 1), ('set_field', 'reg7', 77),
          ('resubmit', 105), ('set_field', 'reg7', 78), ('resubmit', 105)]),
    # Geneve: the receiver's keyed classification and the sender's option.
    Flow(0, 110, {'in_port': 2, 'tunnel_id': 4000, 'tun_metadata0': 77},
         [('write_metadata', 9), ('set_field', 'reg7', 77)], goto=105),
    Flow(75, 100, {'reg7': 78}, [('set_field', 'tunnel_id', 4000),
                                 ('set_field', 'tun_ipv4_dst', '192.0.2.7'),
                                 ('set_field', 'tun_metadata0', 78),
                                 ('output', 2)]),
    Flow(0, 100, {'in_port': 3}, [('set_field', 'reg6', 77),
                                  ('write_metadata', 9)], goto=5),
    Flow(5, 200, {'reg6': 77, 'eth_src': 'fa:16:3e:00:00:01',
                  'eth_type': 0x800, 'ipv4_src': ('10.0.0.0', '255.0.0.0')},
         goto=25),
    Flow(25, 100, {'metadata': 9, 'eth_type': 0x806, 'arp_op': 1,
                   'arp_tpa': '10.0.0.5'},
         [('move', 'eth_src', 'eth_dst', 48),
          ('set_field', 'eth_src', 'fa:16:3e:00:00:05'),
          ('set_field', 'arp_op', 2), ('in_port',)]),
    Flow(55, 50, {'metadata': 9, 'eth_dst': ('01:00:00:00:00:00',
                                             '01:00:00:00:00:00')},
         [('output', 3), ('set_field', 'tunnel_id', 1001),
          ('set_field', 'tun_ipv4_dst', '172.30.0.2'), ('output', 1)]),
    Flow(30, 100, {'metadata': 9, 'eth_type': 0x800, 'ip_proto': 17,
                   'udp_src': 68, 'udp_dst': 67}, [('controller',)]),
    Flow(10, 100, {'reg6': 77, 'eth_type': 0x800}, [('ct', 9, 15, False)]),
    Flow(110, 50, {'reg7': 77, 'ct_state': (0x21, 0x37), 'eth_type': 0x800,
                   'ip_proto': 6, 'tcp_dst': (1024, 0xfc00),
                   'ipv4_src': ('10.0.0.0', '255.255.255.0')},
         [('ct', 9, None, True)], goto=115),
    Flow(0, 0),
]


@pytest.mark.parametrize('command', ['add', 'delete'])
def test_templates_reproduce_os_ken_serialisation(dp, command):
    codec = flowcodec.FlowCodec(dp)
    for i, flow in enumerate(FLOWS):
        for variant in range(3):     # the second and third use a template
            changed = flow
            if variant == 0 and flowcodec._variables(flow):
                kind, field, value = flowcodec._variables(flow)[0]
                changed = codec._with(flow, 0, codec._inverted(kind, field,
                                                               value))
            got = codec.encode(changed, command, cookie=0x100000000 + i,
                               xid=40 + variant)
            assert bytes(got) == reference(dp, changed, command,
                                           0x100000000 + i, 40 + variant)
    assert codec.fallbacks == 0


def test_values_are_patched_per_flow(dp):
    codec = flowcodec.FlowCodec(dp)
    for key in range(1, 200, 37):
        flow = Flow(55, 100, {'metadata': key, 'eth_dst':
                              'fa:16:3e:00:%02x:%02x' % (key // 256, key % 256)},
                    [('set_field', 'reg7', key * 1000)], goto=75)
        assert bytes(codec.encode(flow, 'add', 7, 9)) == reference(
            dp, flow, 'add', 7, 9)
    assert codec.learned == 1


def test_a_flow_with_many_values_is_serialised_by_os_ken_not_learned(dp):
    codec = flowcodec.FlowCodec(dp)
    copies = [a for key in range(1, 1001)
              for a in (('set_field', 'reg7', key), ('resubmit', 105))]
    flood = Flow(55, 50, {'metadata': 9}, [('set_field', 'reg4', 1)] + copies)
    assert bytes(codec.encode(flood, 'add', 7, 9)) == reference(
        dp, flood, 'add', 7, 9)
    assert codec.fallbacks == 1     # one serialisation, not one per value


def test_tun_metadata0_is_nxm_1_field_40_of_the_mapped_length():
    from dragonflow.controller import geneve
    geneve.register_field()          # idempotent
    assert sum(f.name == 'tun_metadata0'
               for f in ofproto_v1_3.oxm_types) == 1
    buf = bytearray()
    ofproto_v1_3_parser.OFPMatch(tun_metadata0=5).serialize(buf, 0)
    # OXM header: class 0x0001 (NXM_1), field 40, no mask, 4 bytes.
    assert bytes(buf[4:12]) == bytes.fromhex('0001500400000005')


def test_tlv_map_message_maps_dragonflows_option_to_tun_metadata0(dp):
    from dragonflow.controller import geneve
    msg = geneve.tlv_map(dp)
    msg.serialize()
    # Nicira experimenter, NXT_TLV_TABLE_MOD (24), ADD, one nx_tlv_map:
    # class 0x0102, type 0x80, length 4, index 0.
    assert bytes(msg.buf[8:16]) == bytes.fromhex('0000232000000018')
    assert bytes(msg.buf[16:]) == bytes.fromhex(
        '0000000000000000' '0102800400000000')
