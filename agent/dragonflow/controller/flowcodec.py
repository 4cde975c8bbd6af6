"""Fast FlowMod encoding and atomic bundles.

Building a FlowMod with os-ken's parser objects costs ~0.1 ms; 10,000 of
them take longer than OVS needs to install them. Flows of one *shape*
(table, priority, goto, which match fields, which actions) serialise to the
same bytes except where their values go. So each shape is serialised once
with os-ken, the byte range of every value is found by serialising it
again with that value's bits inverted, and later flows of the shape are
copies of those bytes with their values packed in. A shape whose values
cannot be located that way is always serialised by os-ken, and so is one
with more than ``LEARN_MAX`` values: learning costs one serialisation per
value, and a flow with hundreds of actions (a network's flood list, one
copy per local port) is usually alone of its shape, which changes with
every port added, so learning it would cost O(ports^2) on every change
(seen: 10 s with 1,000 ports, long enough for the switch's inactivity
probe to drop the connection).

Changes are sent in an ONF bundle (the OpenFlow 1.3 extension OVS
implements, EXT-230), committed atomically: a switch sees all of a change
or none of it, and the replacement of a whole flow generation loses no
packet.
"""
import itertools
import socket
import struct
import types

from os_ken.ofproto import ofproto_v1_3
from os_ken.ofproto import ofproto_v1_3_parser

from dragonflow.controller import flowdump
from dragonflow.controller import ofswitch

ONF_EXPERIMENTER_ID = 0x4f4e4600
ONF_ET_BUNDLE_ADD_MESSAGE = 2301
OFPT_EXPERIMENTER = 4
BUNDLE_ADD = struct.Struct('!BBHIIIIxxH')
CHUNK = 512 * 1024             # bytes per datapath.send()
LEARN_MAX = 64                 # values a shape may have to be learned
# What a codec needs of a datapath: the agent speaks OpenFlow 1.3 only, so
# one codec serves every connection (and encodes before there is one).
OF13 = types.SimpleNamespace(ofproto=ofproto_v1_3,
                             ofproto_parser=ofproto_v1_3_parser)


def _variables(flow, command='add'):
    """The variable parts of a flow's FlowMod as (kind, field, value), in
    order (a delete carries only the match)."""
    out = [('match', field, value) for field, value in flow.match]
    if command != 'add':
        return out
    for action in flow.actions:
        if action[0] == 'output':
            out.append(('port', None, action[1]))
        elif action[0] == 'set_field':
            out.append(('field', action[1], action[2]))
        elif action[0] == 'write_metadata':
            out.append(('u64', None, action[1]))
    return out


def _shape(flow, command):
    match = tuple((f, isinstance(v, tuple)) for f, v in flow.match)
    actions = tuple(a[:2] if a[0] == 'set_field' else
                    a[:1] if a[0] in ('output', 'write_metadata') else a
                    for a in flow.actions)
    return command, flow.table, flow.priority, flow.goto, match, actions


def _and(value, mask):
    return (int.from_bytes(value, 'big') & int.from_bytes(mask, 'big')) \
        .to_bytes(len(value), 'big')


class FlowCodec:
    """Encodes Flow values into FlowMod bytes (for ``dp``'s protocol:
    anything with os-ken's ofproto and ofproto_parser, e.g. OF13)."""

    def __init__(self, dp=OF13):
        self.dp = dp
        self.ofp = dp.ofproto
        self._templates = {}     # shape -> (bytes, [(offset, width)]) | None
        self.learned = self.fallbacks = 0

    # --- value encoding --------------------------------------------------
    def _encode(self, kind, field, value):
        if kind == 'port':
            return struct.pack('!I', value)
        if kind == 'u64':
            return struct.pack('!Q', value)
        _, data, mask = self.ofp.oxm_from_user(field, value)
        if kind != 'match':
            return data
        # A masked match goes on the wire as value & mask.
        return _and(data, mask) + mask if mask else data

    def _inverted(self, kind, field, value):
        """A value whose encoding differs from value's in every byte."""
        data = bytes(b ^ 0xff for b in self._encode(kind, field, value))
        if kind == 'port':
            return struct.unpack('!I', data)[0]
        if kind == 'u64':
            return struct.unpack('!Q', data)[0]
        num = self.ofp.oxm_from_user(field, value)[0]
        if kind == 'match' and isinstance(value, tuple):
            half = len(data) // 2
            return self.ofp.oxm_to_user(num, data[:half], data[half:])[1]
        return self.ofp.oxm_to_user(num, data, None)[1]

    def _probes(self, kind, field, value):
        """Values that together change every byte of value's encoding.

        A masked match is sent as value & mask, so the inverted value under
        the inverted mask keeps the value bytes that were 0 under a full
        mask byte; the inverted value under an all-ones mask changes
        exactly those."""
        inverted = self._inverted(kind, field, value)
        probes = [inverted]
        if kind == 'match' and isinstance(value, tuple):
            num, data, _ = self.ofp.oxm_from_user(field, inverted)
            probes.append(self.ofp.oxm_to_user(num, data,
                                               b'\xff' * len(data))[1])
        return probes

    @staticmethod
    def _with(flow, index, new):
        """flow with its index-th variable replaced by new."""
        variables = _variables(flow)
        kind, field, _ = variables[index]
        match = dict(flow.match)
        actions = list(flow.actions)
        n_match = len(flow.match)
        if index < n_match:
            match[field] = new
        else:
            k = index - n_match
            for i, action in enumerate(actions):
                if action[0] in ('output', 'set_field', 'write_metadata'):
                    if k == 0:
                        actions[i] = action[:-1] + (new,)
                        break
                    k -= 1
        return type(flow)(flow.table, flow.priority, match, actions,
                          flow.goto)

    def _packer(self, kind, field, value):
        """A fast encoder for this variable's type, checked against the
        generic one on this value (falls back to it when they differ)."""
        expected = self._encode(kind, field, value)

        def one(v, width):
            if isinstance(v, int):
                return {1: struct.Struct('!B'), 2: struct.Struct('!H'),
                        4: struct.Struct('!I'),
                        8: struct.Struct('!Q')}[width].pack
            if isinstance(v, str) and width == 6:
                return lambda x: bytes.fromhex(x.replace(':', ''))
            if isinstance(v, str) and width == 4:
                return socket.inet_aton
            raise KeyError(width)
        try:
            if isinstance(value, tuple):
                half = len(expected) // 2
                pv, pm = one(value[0], half), one(value[1], half)
                # os-ken sends value & mask, as OpenFlow requires.
                packer = (lambda v: _and(pv(v[0]), pm(v[1])) + pm(v[1]))
            else:
                packer = one(value, len(expected))
            if packer(value) == expected:
                return packer
        except (KeyError, ValueError, OSError, struct.error):
            pass
        return lambda v: self._encode(kind, field, v)

    # --- templates -------------------------------------------------------
    def _serialize(self, flow, command, cookie=0):
        if command == 'add':
            msg = ofswitch.flow_mod(self.dp, flow, cookie)
        else:
            msg = ofswitch.flow_delete(self.dp, flow)
        msg.set_xid(0)
        msg.serialize()
        return bytes(msg.buf)

    def _learn(self, flow, command):
        base = self._serialize(flow, command)
        slots = []
        try:
            for i, (kind, field, value) in enumerate(_variables(flow,
                                                                command)):
                width = len(self._encode(kind, field, value))
                diff = set()
                for probe in self._probes(kind, field, value):
                    other = self._serialize(self._with(flow, i, probe),
                                            command)
                    if len(other) != len(base):
                        return None
                    diff |= {j for j, (a, b) in enumerate(zip(base, other))
                             if a != b}
                diff = sorted(diff)
                if len(diff) != width or diff[-1] - diff[0] + 1 != width:
                    return None
                slots.append((diff[0], width,
                              self._packer(kind, field, value)))
        except (ValueError, KeyError, TypeError, struct.error):
            return None
        return base, slots

    def encode(self, flow, command='add', cookie=0, xid=0):
        """FlowMod bytes (a bytearray) for flow."""
        if len(flow.match) + len(flow.actions) > LEARN_MAX:
            # Not learned, and not remembered either: a flood list's shape
            # changes with every port, so its shapes would pile up.
            template = None
        else:
            shape = _shape(flow, command)
            if shape not in self._templates:
                learnable = len(_variables(flow, command)) <= LEARN_MAX
                self._templates[shape] = self._learn(flow, command) \
                    if learnable else None
                self.learned += 1
            template = self._templates[shape]
        if template is None:
            self.fallbacks += 1
            buf = bytearray(self._serialize(flow, command, cookie))
        else:
            base, slots = template
            buf = bytearray(base)
            for (offset, width, pack), (_, _, value) in zip(
                    slots, _variables(flow, command)):
                buf[offset:offset + width] = pack(value)
            if command == 'add':
                struct.pack_into('!Q', buf, 8, cookie)
        struct.pack_into('!I', buf, 4, xid)
        return buf

    def keyed(self, adds):
        """(flow, cookie, identity, rest) for each (Flow, cookie) of
        adds: what :meth:`FlowWriter.commit_over` compares with the
        switch's flows (flowdump.flow_mod_key of the FlowMod); a
        generator, computed ahead of a connection when that saves time."""
        for flow, cookie in adds:
            yield (flow, cookie,
                   *flowdump.flow_mod_key(self.encode(flow, 'add', cookie)))


class FlowWriter:
    """Sends flow changes to one switch in atomic bundles."""

    FLAGS = 1 | 2          # ONF_BF_ATOMIC | ONF_BF_ORDERED

    def __init__(self, dp, pause=None, codec=None):
        self.dp = dp
        self.codec = codec or FlowCodec(dp)
        self._bundle_id = 0
        # Called after each chunk sent: lets the connection's other work
        # (echo replies, the send loop itself) run during a big bundle.
        self.pause = pause or (lambda: None)

    def _xid(self):
        dp = self.dp
        dp.xid = (dp.xid + 1) & dp.ofproto.MAX_XID
        return dp.xid

    def _ctrl(self, bundle_id, kind):
        parser = self.dp.ofproto_parser
        msg = parser.ONFBundleCtrlMsg(self.dp, bundle_id, kind, self.FLAGS,
                                      [])
        self.dp.set_xid(msg)
        msg.serialize()
        return bytes(msg.buf)

    def _add(self, bundle_id, inner):
        xid = self._xid()
        struct.pack_into('!I', inner, 4, xid)   # inner xid = outer xid
        return BUNDLE_ADD.pack(4, OFPT_EXPERIMENTER,
                               BUNDLE_ADD.size + len(inner), xid,
                               ONF_EXPERIMENTER_ID, ONF_ET_BUNDLE_ADD_MESSAGE,
                               bundle_id, self.FLAGS) + inner

    def commit(self, deletes=(), adds=(), messages=(), prelude=()):
        """One atomic change: other os-ken messages first (prelude, e.g.
        delete everything), deletes (Flows), adds ((Flow, cookie)), other
        os-ken messages (messages), in that order."""
        encode = self.codec.encode
        return self.send(itertools.chain(
            (encode(flow, 'delete') for flow in deletes),
            (encode(flow, 'add', cookie) for flow, cookie in adds)),
            messages, prelude)

    def commit_over(self, keyed, present, keep=()):
        """One atomic change from the flows the switch has (present, as
        :func:`flowdump.dump` reads them) to the wanted flows (keyed, as
        :meth:`FlowCodec.keyed` gives them): the flows present as they are
        stay untouched, the others are added (a flow of the same match and
        priority replaced in place), and what is present but not wanted
        is deleted, except the flows with cookie 0 in the tables of keep
        (flows the switch learned). Returns (messages sent, flows kept)."""
        have = {identity: (rest, raw) for identity, rest, raw in present}
        wanted, sends = set(), []
        for flow, cookie, identity, rest in keyed:
            wanted.add(identity)
            found = have.get(identity)
            if found is None or found[0] != rest:
                sends.append(self.codec.encode(flow, 'add', cookie))
        deletes = [flowdump.delete_strict(table, priority, raw)
                   for (table, priority, match), (rest, raw) in have.items()
                   if (table, priority, match) not in wanted and
                   not (rest[0] == 0 and table in keep)]
        kept = len(wanted) - len(sends)
        return self.send(itertools.chain(deletes, sends)), kept

    def send(self, encoded, messages=(), prelude=()):
        """One atomic bundle: prelude (os-ken messages), the encoded
        FlowMods (bytearrays, their xids overwritten), messages; the
        number of messages in it (0: nothing sent)."""
        ofp = self.dp.ofproto
        bid = (self._bundle_id + 1) & 0xffffffff
        chunks = [self._ctrl(bid, ofp.ONF_BCT_OPEN_REQUEST)]
        size = len(chunks[0])
        count = 0

        def push(data):
            nonlocal size, count
            chunks.append(self._add(bid, data))
            count += 1
            size += len(chunks[-1])
            if size >= CHUNK:
                self._flush(chunks)
                size = 0

        def serialized(messages):
            for msg in messages:
                msg.set_xid(0)
                msg.serialize()
                yield bytearray(msg.buf)

        for data in itertools.chain(serialized(prelude), encoded,
                                    serialized(messages)):
            if count == 0:
                self._bundle_id = bid
            push(data)
        if count == 0:
            return 0
        chunks.append(self._ctrl(bid, ofp.ONF_BCT_COMMIT_REQUEST))
        self._flush(chunks)
        return count

    def _flush(self, chunks):
        if chunks:
            self.dp.send(b''.join(chunks))
            chunks.clear()
            self.pause()
