"""A full sync over the switch's flows (flowdump + FlowWriter.commit_over):
keys read from flow-stats replies equal the keys of the FlowMods that made
those flows (whatever order the switch writes the match fields in), and
the bundle holds only the difference. The real switch: the lab's restart
tests (tests/lab/test_l2.py, test_scale.py)."""
import struct
import types

import pytest

pytest.importorskip('os_ken')

from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser  # noqa: E402

from dragonflow.controller import flowcodec, flowdump  # noqa: E402
from dragonflow.controller import pipeline as pl  # noqa: E402
from dragonflow.controller.flows import Flow  # noqa: E402

COOKIE = 0x500000003


class Dp(types.SimpleNamespace):
    def __init__(self):
        super().__init__(ofproto=ofproto_v1_3,
                         ofproto_parser=ofproto_v1_3_parser, xid=0, sent=[])

    def set_xid(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)

    def send(self, data):
        self.sent.append(bytes(data))


FLOWS = [
    Flow(0, 100, {'in_port': 3}, [('set_field', 'reg6', 77),
                                  ('write_metadata', 9)], goto=5),
    Flow(25, 100, {'metadata': 9, 'eth_type': 0x806, 'arp_op': 1,
                   'arp_tpa': '10.0.0.5'},
         [('move', 'eth_src', 'eth_dst', 48),
          ('set_field', 'eth_src', 'fa:16:3e:00:00:05'),
          ('set_field', 'arp_op', 2), ('in_port',)]),
    Flow(10, 100, {'reg6': 77, 'eth_type': 0x800}, [('ct', 9, 15, False)]),
]


def stats_entry(flow_mod, cookie=None, reverse=True):
    """The ofp_flow_stats a switch would return for flow_mod's flow, its
    match fields written in reverse order."""
    old_cookie, table, priority = flowdump.FLOW_MOD.unpack_from(flow_mod, 0)
    offset = flowdump.FLOW_MOD.size
    length = struct.unpack_from('!H', flow_mod, offset + 2)[0]
    fields, i = [], offset + 4
    while i < offset + length:
        size = 4 + flow_mod[i + 3]
        fields.append(bytes(flow_mod[i:i + size]))
        i += size
    if reverse:
        fields.reverse()
    padded = (length + 7) // 8 * 8
    match = struct.pack('!HH', 1, length) + b''.join(fields) + \
        bytes(padded - length)
    instructions = bytes(flow_mod[offset + padded:])
    head = struct.pack('!HBx8xHHHH4xQQQ', 48 + len(match) +
                       len(instructions), table, priority, 0, 0, 0,
                       old_cookie if cookie is None else cookie, 0, 0)
    return head + match + instructions


def encoded(flow, cookie=COOKIE):
    return flowcodec.FlowCodec(Dp()).encode(flow, 'add', cookie)


def present(*entries):
    return flowdump.stats_keys(memoryview(b''.join(entries)))


def test_stats_keys_equal_the_flow_mod_keys_whatever_the_field_order():
    for flow in FLOWS:
        buf = encoded(flow)
        (identity, rest, raw), = present(stats_entry(buf))
        assert (identity, rest) == flowdump.flow_mod_key(buf)
        assert identity[:2] == (flow.table, flow.priority)


def test_another_cookie_or_action_is_another_key():
    buf = encoded(FLOWS[0])
    (_, rest, _), = present(stats_entry(buf, cookie=COOKIE + 1))
    assert rest != flowdump.flow_mod_key(buf)[1]
    other = Flow(0, 100, {'in_port': 3}, [('set_field', 'reg6', 78),
                                          ('write_metadata', 9)], goto=5)
    assert flowdump.flow_mod_key(encoded(other)) != \
        flowdump.flow_mod_key(buf)


def inner_messages(dp):
    """(type, command) of the messages inside the bundle dp was sent."""
    data = b''.join(dp.sent)
    out, i = [], 0
    while i < len(data):
        length = struct.unpack_from('!H', data, i + 2)[0]
        if data[i + 1] == 4 and struct.unpack_from('!I', data, i + 12)[0] \
                == flowcodec.ONF_ET_BUNDLE_ADD_MESSAGE:
            inner = data[i + flowcodec.BUNDLE_ADD.size:i + length]
            out.append((inner[1], inner[25], struct.unpack_from(
                '!H', inner, 30)[0]))
        i += length
    return out


def test_commit_over_sends_only_the_difference():
    dp = Dp()
    writer = flowcodec.FlowWriter(dp)
    same, changed, new = FLOWS
    before = Flow(changed.table, changed.priority, changed.match_dict,
                  [('in_port',)])
    stray = Flow(40, 7, {'reg6': 5})
    learned = Flow(pl.LEARNED[0], 100, {'reg6': 6})
    switch = present(stats_entry(encoded(same)),
                     stats_entry(encoded(before)),
                     stats_entry(encoded(stray)),
                     stats_entry(encoded(learned, cookie=0)))
    sent, kept = writer.commit_over(
        writer.codec.keyed([(flow, COOKIE) for flow in FLOWS]), switch,
        keep=pl.LEARNED)
    assert kept == 1
    # The stray flow deleted (strict), the changed one replaced in place
    # (an add of the same match), the new one added; the learned one and
    # the unchanged one untouched.
    assert sorted(inner_messages(dp)) == sorted([
        (14, 4, 7), (14, 0, changed.priority), (14, 0, new.priority)])
    assert sent == 3


def test_commit_over_an_identical_switch_sends_nothing():
    dp = Dp()
    writer = flowcodec.FlowWriter(dp)
    switch = present(*(stats_entry(encoded(flow)) for flow in FLOWS))
    keyed = writer.codec.keyed([(f, COOKIE) for f in FLOWS])
    assert writer.commit_over(keyed, switch) == (0, len(FLOWS))
    assert dp.sent == []


def test_mgmt_path_follows_the_configured_vswitchd():
    assert flowdump.mgmt_path('br-int', '/run/x/ovs-vswitchd.7.ctl') == \
        '/run/x/br-int.mgmt'
