"""What a bridge holds: its flows, read over the bridge's management socket
(``<rundir>/<bridge>.mgmt``, a plain OpenFlow 1.3 connection of its own),
as keys a full sync compares with the FlowMods it would send.

A restarted agent finds its predecessor's flows in place; replacing all
65k of them in one bundle costs vswitchd seconds. With the switch's flows
known, a full sync sends only what differs (controller/service.py). The
dump is read without os-ken (whose parser objects would cost seconds for
65k flows): a flow's key is its table, priority, cookie, match and
instructions as bytes, the match's OXM fields sorted (vswitchd writes them
in its own order). A flow that compares unequal for any reason (an action
vswitchd encodes its own way) is simply sent again, so the keys only need
to be equal when the flows are.
"""
import os
import socket
import struct

OFP_VERSION = 4
OFPT_ERROR, OFPT_ECHO_REQUEST, OFPT_ECHO_REPLY = 1, 2, 3
OFPT_MULTIPART_REQUEST, OFPT_MULTIPART_REPLY = 18, 19
OFPMP_FLOW = 1
OFPMPF_REPLY_MORE = 1
OFPTT_ALL = 0xff
OFPP_ANY = 0xffffffff
OFPG_ANY = 0xffffffff

HEADER = struct.Struct('!BBHI')
MULTIPART = struct.Struct('!HH4x')
# table_id, out_port, out_group, cookie, cookie_mask; then an empty match.
FLOW_REQUEST = struct.Struct('!B3xII4xQQ')
EMPTY_MATCH = struct.pack('!HH4x', 1, 4)
# ofp_flow_stats: length, table_id, priority, cookie (the rest skipped).
STATS = struct.Struct('!HB9xH10xQ16x')
# ofp_flow_mod: cookie, table_id, priority (after the 8-byte header).
FLOW_MOD = struct.Struct('!8xQ8xBx4xH12x4x')


class DumpError(Exception):
    pass


def mgmt_path(bridge, unixctl=None):
    """The bridge's management socket: in the run directory of the
    vswitchd whose control socket is unixctl, else OVS_RUNDIR or the
    default run directory."""
    rundir = os.path.dirname(unixctl) if unixctl else \
        os.environ.get('OVS_RUNDIR', '/var/run/openvswitch')
    return os.path.join(rundir, f'{bridge}.mgmt')


def _match_key(buf, offset):
    """(sorted OXM TLVs as bytes, the padded match length) of the
    ofp_match at offset."""
    length = struct.unpack_from('!H', buf, offset + 2)[0]
    fields, i, end = [], offset + 4, offset + length
    while i < end:
        size = 4 + buf[i + 3]
        fields.append(bytes(buf[i:i + size]))
        i += size
    fields.sort()
    return tuple(fields), (length + 7) // 8 * 8


def flow_mod_key(buf):
    """The key of a FlowMod (OFPFC_ADD) as flowcodec encodes it:
    ((table, priority, match), (cookie, instructions))."""
    cookie, table, priority = FLOW_MOD.unpack_from(buf, 0)
    match, size = _match_key(buf, FLOW_MOD.size)
    return (table, priority, match), \
        (cookie, bytes(buf[FLOW_MOD.size + size:]))


def stats_keys(body):
    """Keys of the ofp_flow_stats entries in a multipart reply body:
    [((table, priority, match), (cookie, instructions), raw match)]."""
    out, i, end = [], 0, len(body)
    while i < end:
        length, table, priority, cookie = STATS.unpack_from(body, i)
        match, size = _match_key(body, i + STATS.size)
        raw = bytes(body[i + STATS.size:i + STATS.size + size])
        out.append(((table, priority, match),
                    (cookie, bytes(body[i + STATS.size + size:i + length])),
                    raw))
        i += length
    return out


def _recv_exact(sock, size):
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise DumpError('the switch closed the connection')
        data += chunk
    return data


def _messages(sock):
    while True:
        header = _recv_exact(sock, HEADER.size)
        version, kind, length, xid = HEADER.unpack(header)
        yield kind, xid, _recv_exact(sock, length - HEADER.size)


def dump(path, timeout=30.0):
    """Every flow of the bridge behind the management socket path, as
    :func:`stats_keys` gives them. Raises DumpError (or OSError) when it
    cannot."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(HEADER.pack(OFP_VERSION, 0, HEADER.size, 1))
        body = MULTIPART.pack(OFPMP_FLOW, 0) + FLOW_REQUEST.pack(
            OFPTT_ALL, OFPP_ANY, OFPG_ANY, 0, 0) + EMPTY_MATCH
        sock.sendall(HEADER.pack(OFP_VERSION, OFPT_MULTIPART_REQUEST,
                                 HEADER.size + len(body), 2) + body)
        out = []
        for kind, xid, data in _messages(sock):
            if kind == OFPT_ECHO_REQUEST:
                sock.sendall(HEADER.pack(OFP_VERSION, OFPT_ECHO_REPLY,
                                         HEADER.size + len(data), xid) +
                             data)
            elif kind == OFPT_ERROR and xid == 2:
                raise DumpError('the switch refused the flow dump: error '
                                f'{bytes(data[:4]).hex()}')
            elif kind == OFPT_MULTIPART_REPLY and xid == 2:
                stats_type, flags = MULTIPART.unpack_from(data, 0)
                out += stats_keys(memoryview(data)[MULTIPART.size:])
                if not flags & OFPMPF_REPLY_MORE:
                    return out
    finally:
        sock.close()


def delete_strict(table, priority, raw_match):
    """An OFPFC_DELETE_STRICT FlowMod (xid 0) for the flow with that
    table, priority and match (as the switch encoded it)."""
    body = struct.pack('!QQBBHHHIIIH2x', 0, 0, table, 4, 0, 0, priority,
                       0xffffffff, OFPP_ANY, OFPG_ANY, 0) + raw_match
    return bytearray(HEADER.pack(OFP_VERSION, 14, HEADER.size + len(body),
                                 0) + body)
