"""Many znodes read in one ZooKeeper request.

ZooKeeper 3.6 added ``multiRead`` (opcode 22): a list of reads answered in
one response, each with its own result (a read of a missing node fails
alone; nothing is atomic about it, unlike a write transaction). kazoo has
no call for it, but its request classes are plain records, so this module
adds one. It matters for cost, not semantics: every request costs the
server a pass through its request pipeline, and 2,000 pipelined getData
requests took ZooKeeper 3.8 0.2-0.4 s of CPU where the same reads in
multiReads of 100 to 1,000 nodes took 0.01-0.03 s. A subscriber
catching up on a bulk write, a resync, and a bulk patch reading its
objects all read this way.

A server without it (older than 3.6) answers with an error (ZooKeeper
3.8 answers an unknown request "unimplemented" and drops the connection:
that call fails as a connection loss, which every caller retries); the
client then reads node by node (pipelined) for good.
"""
import collections
import logging

from kazoo import exceptions as kz
from kazoo.protocol import serialization as ser
from kazoo.protocol.states import ZnodeStat

LOG = logging.getLogger(__name__)

# Paths per request: the reply holds every node's data (objects and log
# entries are a few hundred bytes to a few KB; 1 MB at most each).
CHUNK = 128

# Errors that say the connection failed, not that the server lacks the
# request: those propagate like any read's.
_CONNECTION_ERRORS = (kz.ConnectionLoss, kz.SessionExpiredError,
                      kz.OperationTimeoutError, kz.ConnectionClosedError)


class MultiRead(collections.namedtuple('MultiRead', 'paths')):
    """getData of each path, without watches, in one request."""

    type = 22

    def serialize(self):
        head = ser.MultiHeader(ser.GetData.type, False, -1).serialize()
        out = bytearray()
        for path in self.paths:
            out += head
            out += ser.write_string(path)
            out.append(0)           # no watch
        return out + ser.multiheader_struct.pack(-1, True, -1)

    @classmethod
    def deserialize(cls, buf, offset):
        """A list with (data, ZnodeStat) or the error's exception per
        path, in order."""
        out = []
        while True:
            kind, done, _ = ser.multiheader_struct.unpack_from(buf, offset)
            offset += ser.multiheader_struct.size
            if done:
                return out
            if kind == -1:
                err = ser.int_struct.unpack_from(buf, offset)[0]
                offset += ser.int_struct.size
                out.append(kz.EXCEPTIONS[err]())
                continue
            data, offset = ser.read_buffer(buf, offset)
            stat = ZnodeStat._make(ser.stat_struct.unpack_from(buf, offset))
            offset += ser.stat_struct.size
            out.append((data, stat))


def _send(client, paths):
    result = client.handler.async_result()
    root = client.chroot or ''
    client._call(MultiRead([root + p for p in paths]), result)
    return result


def get_many(client, paths, chunk=CHUNK):
    """getData of every path: a list, in order, of (data, ZnodeStat), or
    None for a node that does not exist. Chunks of ``chunk`` paths go out
    together (pipelined); any other error of a read (a connection loss,
    no authorisation) raises."""
    paths = list(paths)
    if not paths:
        return []
    if getattr(client, '_df_multiread', True):
        pending = [_send(client, paths[i:i + chunk])
                   for i in range(0, len(paths), chunk)]
        out = []
        try:
            for result in pending:
                out += result.get()
        except _CONNECTION_ERRORS:
            raise
        except Exception as e:      # no multiRead on this server
            LOG.warning('ZooKeeper did not answer a multiRead (%s: older '
                        'than 3.6?); reading node by node',
                        type(e).__name__)
            client._df_multiread = False
        else:
            return [_found(result) for result in out]
    pending = [client.get_async(p) for p in paths]
    out = []
    for result in pending:
        try:
            out.append(result.get())
        except kz.NoNodeError:
            out.append(None)
    return out


def _found(result):
    """A multiRead result: (data, stat), None if the node does not exist;
    another error raises."""
    if isinstance(result, kz.NoNodeError):
        return None
    if isinstance(result, Exception):
        raise result
    return result
