"""Flows as plain, hashable data, and the table of what is installed.

Apps describe flows as :class:`Flow` values (table, priority, match,
actions, goto); nothing here imports os-ken, so apps are pure functions of
the NB state and testable without a switch. :class:`FlowTable` keeps the
flows installed per (app, key) and turns a new desired set for a key into
the minimal adds and deletes; :mod:`dragonflow.controller.ofswitch` turns
those into OpenFlow messages.

Action tuples:
``('output', port)``, ``('in_port',)`` (output to the ingress port),
``('normal',)`` (the bridge's own L2 switching),
``('controller',)``, ``('set_field', field, value)``,
``('move', src_field, dst_field, n_bits)``, ``('dec_ttl',)``,
``('push_vlan', ethertype)``, ``('pop_vlan',)``,
``('write_metadata', value)`` (an instruction: applied with the goto),
``('ct', zone, table, commit[, nat[, mark]])`` (conntrack in an immediate
zone; recirculate to table unless it is None; commit the connection if
commit is true; nat: ``'restore'`` or ``('src'|'dst', ip)``; mark: a
ct_mark to set on commit).
An empty action list with no goto drops.
"""
import collections


class Flow(collections.namedtuple('Flow', 'table priority match actions '
                                          'goto')):
    """One OpenFlow flow. ``match`` is a sorted tuple of (field, value)."""

    __slots__ = ()

    def __new__(cls, table, priority, match=None, actions=(), goto=None):
        items = tuple(sorted((match or {}).items()))
        return super().__new__(cls, table, priority, items, tuple(actions),
                               goto)

    @property
    def match_dict(self):
        return dict(self.match)

    def identity(self):
        """What OpenFlow identifies a flow by (table, priority, match)."""
        return self.table, self.priority, self.match


class FlowTable:
    """Installed flows, by owner (app name) and key (e.g. a network id)."""

    def __init__(self):
        self._by_key = {}        # (app, key) -> set(Flow)

    def replace(self, app, key, flows):
        """Set the desired flows of (app, key); returns (adds, deletes).

        A flow whose identity stays but whose actions change is an add
        (OpenFlow add replaces the flow in place, with no gap).
        """
        new = set(flows)
        old = self._by_key.get((app, key), set())
        if new:
            self._by_key[(app, key)] = new
        else:
            self._by_key.pop((app, key), None)
        adds = new - old
        kept = {f.identity() for f in new}
        deletes = {f for f in old - new if f.identity() not in kept}
        return sorted(adds, key=_order), sorted(deletes, key=_order)

    def clear(self):
        self._by_key.clear()


def _order(flow):
    return flow.table, -flow.priority, repr(flow.match)
