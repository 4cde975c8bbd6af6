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
``('resubmit', table)`` (a copy goes through table, then the list goes on),
``('write_metadata', value)`` (an instruction: applied with the goto),
``('conjunction', id, k, n)`` (clause k of n of conjunctive match id;
the flow's only kind of action),
``('ct', zone, table, commit[, nat[, mark]])`` (conntrack in an immediate
zone; recirculate to table unless it is None; commit the connection if
commit is true; nat: ``'restore'`` or ``('src'|'dst', ip[, port])``; mark:
a ct_mark to set on commit),
``('multipath', hash fields, links, register)`` (modulo-N of a hash of
the fields, ovs-actions(7)'s numbering, into the register's low 16 bits),
``('learn', table, idle timeout, fixed, copied, loads)`` (the switch
adds a flow matching the fixed ``(value, field, bits)`` and the packet's
values of the copied ``(field, bits)``, loading the ``(value, field,
bits)``; cookie 0).
An empty action list with no goto drops.
"""
import collections

from dragonflow.controller import pipeline


# (field, value) pairs are shared between flows (a port's key, an
# ethertype, a conntrack state recur in dozens of its flows): one tuple
# each instead of one per flow, which was a third of the memory of 65k
# installed flows. Short action lists are shared the same way (65k flows
# have ~4k distinct ones). Pairs of flows that are gone (a deleted port's
# addresses) would pile up: a FlowTable keeps only its flows' pairs and
# actions when the cache has doubled since it last did
# (FlowTable._prune_pairs), and the cache is emptied past PAIRS_MAX
# anyway. Correctness does not depend on it.
_PAIRS = {}
PAIRS_MAX = 500000
PAIRS_PRUNE_MIN = 5000      # no pruning below this many pairs
# Longer action lists (a flood list of every port) are one flow's own and
# would keep every past version alive in the cache.
SHARED_ACTIONS_MAX = 4


def _shared(pair):
    found = _PAIRS.get(pair)
    if found is None:
        if len(_PAIRS) >= PAIRS_MAX:
            _PAIRS.clear()
        found = _PAIRS[pair] = pair
    return found


class Flow(collections.namedtuple('Flow', 'table priority match actions '
                                          'goto')):
    """One OpenFlow flow. ``match`` is a sorted tuple of (field, value)."""

    __slots__ = ()

    def __new__(cls, table, priority, match=None, actions=(), goto=None):
        items = tuple(map(_shared, sorted((match or {}).items())))
        actions = tuple(actions)
        if len(actions) <= SHARED_ACTIONS_MAX:
            actions = _shared(actions)
        return super().__new__(cls, table, priority, items, actions, goto)

    @property
    def match_dict(self):
        return dict(self.match)

    def identity(self):
        """What OpenFlow identifies a flow by (table, priority, match)."""
        return self.table, self.priority, self.match


Change = collections.namedtuple('Change', 'app key flows')
Refusal = collections.namedtuple('Refusal', 'app key flow reason')


class FlowChanges(collections.namedtuple('FlowChanges',
                                         'adds deletes refused')):
    """What an update sends to the switch: ``adds`` as (app, Flow),
    ``deletes`` as Flow; ``refused`` lists the flows kept off it."""

    __slots__ = ()

    def raise_refused(self):
        """For tests and tools: a refusal is an error."""
        if self.refused:
            raise FlowRefused('; '.join(r.reason for r in self.refused))
        return self


class FlowRefused(ValueError):
    pass


class _Owners:
    """Flow identity (table, priority, match) -> owner, kept by place:
    {(table, priority): {match: owner}}. The key is the flow's own match
    tuple, so no identity tuple is kept per flow (4 MB of 65k flows)."""

    __slots__ = ('_places',)

    def __init__(self):
        self._places = {}

    def get(self, identity):
        table, priority, match = identity
        place = self._places.get((table, priority))
        return None if place is None else place.get(match)

    def __contains__(self, identity):
        return self.get(identity) is not None

    def __setitem__(self, identity, owner):
        table, priority, match = identity
        place = self._places.get((table, priority))
        if place is None:
            place = self._places[(table, priority)] = {}
        place[match] = owner

    def __delitem__(self, identity):
        table, priority, match = identity
        place = self._places[(table, priority)]
        del place[match]
        if not place:
            del self._places[(table, priority)]

    def clear(self):
        self._places.clear()


class FlowTable:
    """Installed flows, by owner: (app name, key), e.g. a network id.

    One owner per flow: a flow whose identity (table, priority, match) is
    already held by another owner is refused, and the refusal names both
    owners. Within one :meth:`update` the flows owners give up are released
    before new ones are claimed, so a flow moving from one key to another
    in the same batch (a floating IP moving to a port of another network)
    is not a conflict. ``check(app, flow)``, when given, vets every new
    flow (the declared pipeline: :func:`pipeline.check`) and a flow it
    raises on is refused the same way. A refused flow is not installed and
    the owner's other flows are; the caller logs or raises the refusals.
    """

    def __init__(self, check=None):
        # A tuple per owner, not a set: 5,000 owners' sets were a tenth of
        # the memory of 65k flows; diffs make the set they need.
        self._by_key = {}        # (app, key) -> tuple(Flow)
        self._owner = _Owners()  # flow identity -> (app, key)
        self.check = check
        self._pairs_limit = PAIRS_PRUNE_MIN

    def flows(self, app, key):
        return frozenset(self._by_key.get((app, key), ()))

    def owner(self, flow):
        return self._owner.get(flow.identity())

    def replace(self, app, key, flows):
        """Set the desired flows of one (app, key): see :meth:`update`."""
        return self.update([Change(app, key, flows)])

    def update(self, changes):
        """Set the desired flows of each (app, key) in changes (an
        iterable of :class:`Change` or (app, key, flows)); returns the
        :class:`FlowChanges` bringing the switch there.

        A flow whose identity stays but whose actions change is an add
        (OpenFlow add replaces the flow in place, with no gap).
        """
        plan = []
        for app, key, flows in changes:
            owner = (app, key)
            new = set(flows)
            old = self._by_key.get(owner, ())
            removed = [f for f in old if f not in new]
            # Identities only of what changed: a key's unchanged flows
            # (most of them, usually) cost nothing more here.
            added = {f: f.identity() for f in new.difference(old)}
            plan.append((owner, new, added, removed))
            replaced = set(added.values())
            for flow in removed:
                identity = flow.identity()
                if identity not in replaced and \
                        self._owner.get(identity) == owner:
                    del self._owner[identity]
        adds, released, refused = [], [], []
        for owner, new, added, removed in plan:
            kept = set()
            for flow, identity in added.items():
                reason = self._refusal(owner, flow, identity)
                if reason is not None:
                    refused.append(Refusal(*owner, flow, reason))
                    new.discard(flow)
                    if self._owner.get(identity) == owner:
                        del self._owner[identity]    # its old flow goes
                    continue
                self._owner[identity] = owner
                kept.add(identity)
                adds.append((owner[0], flow))
            if new:
                self._by_key[owner] = tuple(new)
            else:
                self._by_key.pop(owner, None)
            released += [f for f in removed if f.identity() not in kept]
        # A flow another owner claimed in this batch is replaced by its add.
        deletes = {f.identity(): f for f in released
                   if f.identity() not in self._owner}
        if len(_PAIRS) > self._pairs_limit:
            self._prune_pairs()
        return FlowChanges(sorted(adds, key=lambda a: _order(a[1])),
                           sorted(deletes.values(), key=_order), refused)

    def _prune_pairs(self):
        """Keep only the shared pairs of the installed flows (the same
        objects, so flows computed later still share them)."""
        live = {}
        for flows in self._by_key.values():
            for flow in flows:
                live[flow.actions] = flow.actions
                for pair in flow.match:
                    live[pair] = pair
        _PAIRS.clear()
        _PAIRS.update(live)
        self._pairs_limit = max(PAIRS_PRUNE_MIN, 2 * len(live))

    def _refusal(self, owner, flow, identity):
        holder = self._owner.get(identity)
        if holder is not None and holder != owner:
            return (f'duplicate flow in stage {pipeline.name(flow.table)} '
                    f'priority {flow.priority} match {dict(flow.match)}: '
                    f'owned by app {holder[0]} key {holder[1]!r}, also '
                    f'wanted by app {owner[0]} key {owner[1]!r}')
        if self.check is not None:
            try:
                self.check(owner[0], flow)
            except ValueError as e:
                return str(e)
        return None

    def at(self, places):
        """{(table, priority): [(app, key, Flow)]} of the installed flows
        at those places (a trace maps the flows it hit to their owners)."""
        out = {}
        for (app, key), flows in self._by_key.items():
            for flow in flows:
                place = (flow.table, flow.priority)
                if place in places:
                    out.setdefault(place, []).append((app, key, flow))
        return out

    def counts(self):
        """Counter of (app, table, priority): the flows installed at each
        place per app (``dfctl check`` compares it with the switch)."""
        out = collections.Counter()
        for (app, _), flows in self._by_key.items():
            for flow in flows:
                out[(app, flow.table, flow.priority)] += 1
        return out

    def clear(self):
        self._by_key.clear()
        self._owner.clear()


def _order(flow):
    """Tables in order, higher priorities first (a bundle is atomic, so
    this is for readable dumps and logs, not correctness)."""
    return flow.table, -flow.priority


# --- text form, in the spirit of ``ovs-ofctl dump-flows`` -----------------
HEX_FIELDS = ('metadata', 'reg1', 'reg2', 'reg3', 'reg4', 'reg5', 'reg6',
              'reg7', 'ct_mark',
              'ct_state', 'eth_type', 'vlan_vid', 'tunnel_id',
              'tun_metadata0')


def _value(field, value):
    if isinstance(value, tuple):
        return '/'.join(_value(field, v) for v in value)
    if isinstance(value, int) and field in HEX_FIELDS:
        return hex(value)
    return str(value)


def _ct_text(zone, table, commit, nat=None, mark=None):
    parts = [f'zone={zone}']
    if commit:
        parts.append('commit')
    if table is not None:
        parts.append(f'table={table}')
    if nat == 'restore':
        parts.append('nat')
    elif nat is not None:
        port = f':{nat[2]}' if len(nat) > 2 else ''
        parts.append(f'nat({nat[0]}={nat[1]}{port})')
    if mark is not None:
        parts.append(f'exec(set_field:{hex(mark)}->ct_mark)')
    return f'ct({",".join(parts)})'


def action_text(action):
    kind, args = action[0], action[1:]
    if kind in ('in_port', 'normal', 'controller'):
        return kind.upper()
    if kind == 'set_field':
        return f'set_field:{_value(args[0], args[1])}->{args[0]}'
    if kind == 'move':
        return f'move:{args[0]}->{args[1]}/{args[2]}'
    if kind == 'resubmit':
        return f'resubmit(,{args[0]})'
    if kind == 'write_metadata':
        return f'write_metadata:{hex(args[0])}'
    if kind == 'push_vlan':
        return f'push_vlan:{hex(args[0])}'
    if kind == 'conjunction':
        return f'conjunction({args[0]},{args[1]}/{args[2]})'
    if kind == 'learn':
        table, idle, fixed, copied, loads = args
        parts = [f'table={table}', f'idle_timeout={idle}', 'priority=100']
        parts += [f'{field}={_value(field, value)}'
                  for value, field, _ in fixed]
        parts += [f'{field}[]' for field, _ in copied]
        parts += [f'load:{hex(value)}->{field}[]' for value, field, _ in loads]
        return f'learn({",".join(parts)})'
    if kind == 'multipath':
        fields = {3: 'symmetric_l3l4+udp', 4: 'nw_src'}.get(args[0], args[0])
        return f'multipath({fields},0,modulo_n,{args[1]},0,{args[2]}[0..15])'
    if kind == 'ct':
        return _ct_text(*args)
    return ':'.join([kind] + [str(a) for a in args])


def match_text(match):
    """A flow's match (sorted (field, value) items) as text:
    ``eth_type=0x800,ip_proto=6``."""
    return ','.join(f'{f}={_value(f, v)}' for f, v in match)


def text(flow, cookie=None):
    """One line per flow: ``table=55, priority=100, <match>
    actions=<actions>`` (``cookie=0x..,`` first when given)."""
    match = match_text(flow.match)
    actions = [action_text(a) for a in flow.actions]
    if flow.goto is not None:
        actions.append(f'goto_table:{flow.goto}')
    head = f'cookie={hex(cookie)}, ' if cookie is not None else ''
    return (f'{head}table={flow.table}, priority={flow.priority}'
            f'{", " + match if match else ""} '
            f'actions={",".join(actions) or "drop"}')
