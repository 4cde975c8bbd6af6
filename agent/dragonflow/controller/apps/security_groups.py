"""Stateful security groups with conntrack (tables 10/15 egress, 105/110
ingress), the way Neutron's OVS firewall does it.

A local port with port security and at least one security group is
*protected*: its IPv4 and IPv6 packets go through conntrack in the zone of its
network (zone = network key), both when it sends (table 10, after port
security) and when a packet is delivered to it (table 105, from a local
port or a tunnel); conntrack hands the packet to the firewall stages (11,
106: the ``fwaas`` app's, else straight on) before the rules here (15,
110), which commit: a connection is committed only when both allow it.
Established and related packets pass; invalid ones
drop; a new connection passes only if a rule of one of the port's groups
allows it, and is then committed. So replies to allowed connections come
back whatever the rules of the other direction say, and removing a rule
stops new connections only. A group without rules denies everything;
give it egress rules to let its ports send (Neutron creates those with
every group). Ports without security groups are not filtered.

Rules are conjunctive matches (``conjunction`` in ovs-actions(7)), so
flows grow as rules + ports, not rules x ports (OVN expands a port group's
ACLs per port):

- Plain rules (no remote group), priority 45: each local port gets one
  flow per direction naming the conjunctions of its groups (clause 1:
  "this port is in the group"); each distinct rule match (protocol, port
  range as masks, remote prefix) is one flow, keyed by the match, naming
  the conjunctions of every local group with such a rule (clause 2: "this
  service"). A port joining a group adds its own flow and touches no rule
  flow (unless it is the group's first port here: the group joins its
  rules' flows); a rule adds its own match flows and touches no port
  (unless it is its group's first of a direction and IP version: the
  ports' flows name one conjunction more).
- Remote-group rules, priority 40, in three clauses, as OVN does with
  address sets: each local port gets one flow per direction naming the
  conjunctions of its groups' remote-group rules (clause 1: "this port
  is in the group"); each distinct service match of such rules one flow
  naming the conjunctions of the local groups with a rule so (clause 2:
  "this service"); each member address of a remote group one flow naming
  the conjunctions of the local groups whose rules name it (clause 3:
  "from a member"). A member joining adds one flow and touches no port;
  a port joining adds its own flows; a rule touches its group's ports
  and the members of the groups it names.

A conjunction id names the group, the direction and the IP version, and
for remote-group rules the *slot* of the remote group among those the
group's rules name (sorted by id): up to 32 (``SLOTS``); rules naming
more are not enforced (fail closed, logged). The ``conj_id`` flows of a
group's plain rules (keyed by the group) and of the rules naming a remote
group (keyed by the remote group), one per network with a local port in
the group, commit the connection in the network's zone. A packet every
clause matches is a new connection a rule allows; one matching some
clauses only goes on to lower priorities. Ports a firewall filters
without groups commit at priority 50 (``fwaas``), above these.

Rules with ethertype IPv6 match IPv6 (icmpv6 types and codes, v6
prefixes and the v6 addresses of remote groups). Neighbour discovery and
MLD (ICMPv6 130-136, 143) never go through conntrack: IPv6 cannot work
without them, and port security already vets their sources. IGMP, MLD's
IPv4 twin, passes the same way: joining a group needs no rule (the
multicast app snoops it; the group's traffic itself is filtered).
"""
import ipaddress
import logging

from dragonflow.controller import apps
from dragonflow.controller import flows as fl
from dragonflow.controller import pipeline as pl

RULE_PRIORITY = 50      # commits of ports a firewall filters (fwaas)
PLAIN_PRIORITY = 45     # plain rules (clauses and conj_id flows)
CONJ_PRIORITY = 40      # remote-group rules (clauses and conj_id flows)
MATCH_CACHE = 10000     # rules whose matches are kept (x4 before a reset)
SLOTS = 32              # remote groups one group's rules may name
EGRESS_NEXT = pl.PASS_THROUGH[pl.EGRESS_CT]
INGRESS_NEXT = pl.PASS_THROUGH[pl.INGRESS_CT]
PROTO_NUMBERS = {'tcp': 6, 'udp': 17, 'icmp': 1, 'icmpv6': 58, 'sctp': 132}
ND_AND_MLD = (130, 131, 132, 133, 134, 135, 136, 143)
VERSIONS = {'IPv4': (4, pl.ETH_IP, 'ipv4'), 'IPv6': (6, pl.ETH_IPV6, 'ipv6')}
DST_PORT_FIELD = {'tcp': 'tcp_dst', 'udp': 'udp_dst', 'sctp': 'sctp_dst'}
LOG = logging.getLogger(__name__)


def port_masks(low, high):
    """(value, mask) blocks covering the port range low..high exactly."""
    out = []
    while low <= high:
        size = low & -low if low else 1 << 16
        while low + size - 1 > high:
            size >>= 1
        out.append(low if size == 1 else (low, 0xffff & ~(size - 1)))
        low += size
    return out


def _prefix(cidr):
    net = ipaddress.ip_network(cidr, strict=False)
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    if net.prefixlen == 0:
        return None
    return str(net.network_address), str(net.netmask)


def service_matches(rule):
    """The protocol/port part of a rule as OpenFlow matches (dicts with
    the ethertype, without addresses or the port register)."""
    _, eth_type, _ = VERSIONS[rule.ethertype]
    base = {'eth_type': eth_type}
    proto = rule.protocol
    if proto is not None:
        base['ip_proto'] = PROTO_NUMBERS.get(proto) or int(proto)
    variants = [base]
    if proto in DST_PORT_FIELD and rule.port_range_min is not None and \
            (rule.port_range_min, rule.port_range_max) != (1, 65535):
        field = DST_PORT_FIELD[proto]
        variants = [dict(base, **{field: m}) for m in
                    port_masks(rule.port_range_min, rule.port_range_max)]
    elif proto in ('icmp', 'icmpv6'):
        icmp = 'icmpv4' if proto == 'icmp' else 'icmpv6'
        extra = {}
        if rule.port_range_min is not None:
            extra[f'{icmp}_type'] = rule.port_range_min
        if rule.port_range_max is not None:
            extra[f'{icmp}_code'] = rule.port_range_max
        variants = [dict(base, **extra)]
    return variants


def peer_field(direction, ethertype):
    """The field the peer's address is in, for rules of a direction and
    IP version."""
    prefix = VERSIONS[ethertype][2]
    return f'{prefix}_dst' if direction == 'egress' else f'{prefix}_src'


def rule_matches(rule):
    """The OpenFlow matches (dicts, without the port register) a rule
    without a remote group allows."""
    variants = service_matches(rule)
    if not rule.remote_ip_prefix:
        return variants
    remote = _prefix(rule.remote_ip_prefix)
    if remote is None:
        return variants
    field = peer_field(rule.direction, rule.ethertype)
    return [dict(v, **{field: remote}) for v in variants]


def conj_id(group, direction, ethertype, slot=None):
    """The conjunction id of a group's rules of one direction and IP
    version: its plain rules (slot None) or its rules naming the remote
    group in that slot (24-bit group key, 5-bit slot, 3 bits)."""
    low = (direction == 'egress') << 1 | (ethertype == 'IPv6')
    if slot is None:
        return group.unique_key << 3 | 1 << 2 | low
    return slot << 27 | group.unique_key << 3 | low


def _rule_table(direction):
    if direction == 'egress':
        return pl.EGRESS_SG, pl.REG_SRC, EGRESS_NEXT
    return pl.INGRESS_SG, pl.REG_DST, INGRESS_NEXT


def conntrack_flows(app, key, zone):
    """A port's IP through conntrack in its network's zone, both ways,
    on to the firewall stages (11, 106) and then the rules (15, 110)."""
    out = []
    for eth_type in (pl.ETH_IP, pl.ETH_IPV6):
        out += [
            app.flow(pl.EGRESS_CT, 100,
                     {pl.REG_SRC: key, 'eth_type': eth_type},
                     [('ct', zone, pl.FW_EGRESS, False)]),
            app.flow(pl.INGRESS_CT, 100,
                     {pl.REG_DST: key, 'eth_type': eth_type},
                     [('ct', zone, pl.FW_INGRESS_ROUTER, False)]),
        ]
    return out


class MatchCache:
    """compute(rule) kept per rule object (rules are immutable and a
    rule's matches serve every port or group using it), emptied when it
    grows past 4 x MATCH_CACHE (deleted rules: start afresh)."""

    def __init__(self, compute):
        self.compute = compute
        self._by_id = {}        # rule id -> (rule, its matches)

    def get(self, rule):
        found = self._by_id.get(rule.id)
        if found is None or found[0] is not rule:
            if len(self._by_id) >= 4 * MATCH_CACHE:
                self._by_id.clear()
            found = self._by_id[rule.id] = (rule, self.compute(rule))
        return found[1]


def _service_clauses(rule):
    """A rule's service clauses: (key, table, match) of each new
    connection match it allows; the key names the match and the kind of
    rule (plain: 'rules'; remote-group: 'services', no addresses)."""
    table = _rule_table(rule.direction)[0]
    kind = 'rules' if _is_plain(rule) else 'services'
    out = []
    for match in rule_matches(rule):
        match = dict(match, ct_state=pl.CT_STATE_NEW)
        out.append(((kind, f'{table}:{fl.match_text(sorted(match.items()))}'),
                    table, match))
    return out


def _is_plain(rule):
    return not rule.remote_group_id


def _kind(rule):
    """What a rule adds to its group's conjunctions: its direction, IP
    version and remote group (None: plain)."""
    return rule.direction, rule.ethertype, rule.remote_group_id or None


def _kind_is_new(state, rule):
    """Whether no other rule of the rule's group is of its kind (state
    holds the change): its coming or going changes the group's
    conjunctions, not only its own service clauses."""
    kind = _kind(rule)
    return not any(o.id != rule.id and _kind(o) == kind
                   for o in state.group_rules(rule.security_group_id))


def rule_shapes_ports(state, rule, old):
    """Whether a rule change (rule: now, None once deleted; old: before,
    None when created; state holds the change) may change its group's
    ports' own flows: no other rule of its group is of its kind (their
    clause-1 flows name one conjunction more or less)."""
    return any(_kind_is_new(state, r) for r in (rule, old) if r is not None)


class Shape:
    """What a group's rules make of it: the (direction, ethertype) of its
    plain rules, the slot of each remote group they name, and the
    (direction, ethertype, slot) of its remote-group rules."""

    def __init__(self, rules):
        self.plain = frozenset((r.direction, r.ethertype) for r in rules
                               if _is_plain(r))
        named = sorted({r.remote_group_id for r in rules if not _is_plain(r)})
        self.slots = {g: n for n, g in enumerate(named[:SLOTS])}
        self.unslotted = named[SLOTS:]
        self.remote = frozenset(
            (r.direction, r.ethertype, self.slots[r.remote_group_id])
            for r in rules if r.remote_group_id in self.slots)


class SecurityGroupsApp(apps.App):
    name = 'security_groups'
    cookie = 8

    def __init__(self, controller=None):
        super().__init__(controller)
        # A rule's service clauses, once per rule.
        self._clauses = MatchCache(_service_clauses).get
        self._shapes = {}       # group id -> (its rules list, its Shape)
        self._namings = {}      # remote group id -> see _naming
        self._local = None      # (zones version, index, their keys)
        self._enforced = set()  # groups enforced when last looked at
        self._both = None       # (remote keys, plain keys, union)

    def global_flows(self, state):
        out = [
            # Unprotected ports, and non-IP traffic: on to the next stage.
            self.flow(pl.EGRESS_CT, 0, goto=EGRESS_NEXT),
            self.flow(pl.INGRESS_CT, 0, goto=INGRESS_NEXT),
            # A port may always ask for an address.
            self.flow(pl.EGRESS_CT, 200, {
                'eth_type': pl.ETH_IP, 'ip_proto': 17, 'udp_src': 68,
                'udp_dst': 67}, goto=EGRESS_NEXT),
            self.flow(pl.EGRESS_SG, 0),
            self.flow(pl.INGRESS_SG, 0),
        ]
        membership = [{'eth_type': pl.ETH_IP, 'ip_proto': pl.IGMP}]
        for kind in ND_AND_MLD:
            membership.append({'eth_type': pl.ETH_IPV6,
                               'ip_proto': pl.ICMPV6, 'icmpv6_type': kind})
        for match in membership:
            out.append(self.flow(pl.EGRESS_CT, 200, match, goto=EGRESS_NEXT))
            out.append(self.flow(pl.INGRESS_CT, 200, match,
                                 goto=INGRESS_NEXT))
        for table, nxt in ((pl.EGRESS_SG, EGRESS_NEXT),
                           (pl.INGRESS_SG, INGRESS_NEXT)):
            for state_match in (pl.CT_STATE_EST, pl.CT_STATE_REL):
                out.append(self.flow(table, 100, {'ct_state': state_match},
                                     goto=nxt))
        return out

    def port_flows(self, state, port):
        network = state.network(port.network_id)
        if network is None or not port.is_protected() or \
                not state.is_local(port):
            return []
        key = port.unique_key
        out = conntrack_flows(self, key, network.unique_key)
        # Clause 1 of its groups' conjunctions: (table, n) -> actions.
        clauses = {}
        for group_id in port.security_groups:
            group = state.get('security_group', group_id)
            if group is None:
                continue
            shape = self.shape(state, group_id)
            for direction, ethertype in shape.plain:
                clauses.setdefault(
                    (_rule_table(direction)[0], 2), set()).add(
                    conj_id(group, direction, ethertype))
            for direction, ethertype, slot in shape.remote:
                clauses.setdefault(
                    (_rule_table(direction)[0], 3), set()).add(
                    conj_id(group, direction, ethertype, slot))
        for (table, n), ids in sorted(clauses.items()):
            reg = pl.REG_SRC if table == pl.EGRESS_SG else pl.REG_DST
            out.append(self.flow(
                table, PLAIN_PRIORITY if n == 2 else CONJ_PRIORITY,
                {reg: key}, [('conjunction', i, 1, n) for i in sorted(ids)]))
        return out

    def shape(self, state, group_id):
        """The group's Shape (kept while its rules list is: until a rule
        changes)."""
        rules = state.group_rules(group_id)
        found = self._shapes.get(group_id)
        if found is None or found[0] is not rules:
            if len(self._shapes) >= 4 * MATCH_CACHE:
                self._shapes.clear()
            found = self._shapes[group_id] = (rules, Shape(rules))
            if found[1].unslotted:
                LOG.error('security group %s: its rules name %d remote '
                          'groups, %d at most are enforced: rules naming '
                          '%s allow nothing', group_id,
                          SLOTS + len(found[1].unslotted), SLOTS,
                          ', '.join(found[1].unslotted))
        return found[1]

    def _rule_keys(self, state, group_id):
        """The keys of a group's rules' service clauses."""
        return {self.key(*k) for rule in state.group_rules(group_id)
                for k, _, _ in self._clauses(rule)}

    def _named_keys(self, state, group_id):
        """The keys of the remote groups a group's rules name."""
        out = set()
        for remote_id in self.shape(state, group_id).slots:
            out |= self._remote_keys(state, remote_id)
        return out

    def _remote_keys(self, state, remote_id):
        """A remote group's keys: its commits and its members' address
        flows."""
        return {self.key('conj', remote_id)} | \
            self._member_address_keys(state, remote_id)

    def _remote_conj(self, state, group, remote_id, direction, ethertype):
        """The conjunction id of a group's rules naming remote_id of a
        direction and IP version; None if they name too many groups."""
        slot = self.shape(state, group.id).slots.get(remote_id)
        return None if slot is None else \
            conj_id(group, direction, ethertype, slot)

    # --- keyed flows: rules' services, remote groups' address sets -------
    def keys(self, state):
        # Asked on every change. The remote part is kept until a remote
        # group or a member address of one comes or goes
        # (state._add_remote), the local part until a rule changes or a
        # local port comes, goes or changes (and then the same set object
        # while the local groups are the same).
        remote = state.derived('sg_keys', lambda: frozenset(
            {self.key('address', a) for a in state.remote_addresses()} |
            {self.key('conj', g) for g in state.remote_groups()}))
        local = self._local_keys(state)
        if not local or not remote:
            return local or remote
        if self._both is None or self._both[0] is not remote or \
                self._both[1] is not local:
            self._both = (remote, local, remote | local)
        return self._both[2]

    def _local_keys(self, state):
        """Keys of the groups enforced here: their plain rules' commits
        and their rules' services (the same set object while neither the
        enforced groups nor the rules change)."""
        zones = state.local_group_zones()
        index = self._index(state)
        if self._local is not None and self._local[1] is index and \
                self._local[0] == state.group_zones_version:
            return self._local[2]
        keys = set()
        for group_id in zones:
            if self.shape(state, group_id).plain:
                keys.add(self.key('commit', group_id))
            keys |= self._rule_keys(state, group_id)
        self._local = (state.group_zones_version, index, frozenset(keys))
        self._enforced = set(zones)
        return self._local[2]

    def _index(self, state):
        """{(kind, key id): (table, match, (group id, remote group id or
        None) of each rule matching so)} over all rules (kept until a rule
        changes)."""
        def compute():
            out = {}
            for rule in state.objects['security_group_rule'].values():
                for k, table, match in self._clauses(rule):
                    out.setdefault(k, (table, match, set()))[2].add(
                        (rule.security_group_id, rule.remote_group_id))
            return out
        return state.derived('sg_services', compute)

    def key_flows(self, state, key):
        _, kind, key_id = key
        if kind == 'address':
            return self._address_flows(state, key_id)
        if kind in ('rules', 'services'):
            return self._service_flows(state, (kind, key_id))
        if kind == 'commit':
            return self._commit_flows(state, key_id)
        return self._conj_flows(state, key_id)

    def touched_keys(self, state, table, obj, old):
        out = set()
        objs = [o for o in (obj, old) if o is not None]
        if table == 'logical_port':
            for port in objs:
                out |= {self.key('address', a)
                        for a in state.addresses_of(port)}
            if not self._zone_may_change(state, obj, old):
                return out
            zones = state.local_group_zones()
            for port in objs:
                for group_id in port.security_groups:
                    # Its groups' commits (their zones), the conj_id
                    # flows of remote groups their rules name, and when
                    # the group starts or stops being enforced here, the
                    # clauses naming its conjunctions: its rules'
                    # services and the addresses it allows from.
                    out.add(self.key('commit', group_id))
                    out |= {self.key('conj', r)
                            for r in self.shape(state, group_id).slots}
                    if (group_id in zones) != (group_id in self._enforced):
                        self._enforced ^= {group_id}
                        out |= self._rule_keys(state, group_id)
                        out |= self._named_keys(state, group_id)
        elif table == 'security_group_rule':
            for rule in objs:
                out |= {self.key(*k) for k, _, _ in self._clauses(rule)}
                if _is_plain(rule):
                    out.add(self.key('commit', rule.security_group_id))
                elif _kind_is_new(state, rule):
                    # The group's remote slots may have moved: every
                    # clause naming its remote-group conjunctions.
                    group_id = rule.security_group_id
                    out |= self._remote_keys(state, rule.remote_group_id)
                    out |= self._rule_keys(state, group_id)
                    out |= self._named_keys(state, group_id)
        elif table == 'security_group':
            # Its key names its conjunctions (it came or went).
            self._namings.clear()
            for group in objs:
                out.add(self.key('commit', group.id))
                out |= self._rule_keys(state, group.id)
                out |= self._remote_keys(state, group.id)
                out |= self._named_keys(state, group.id)
        return out

    def _member_address_keys(self, state, group_id):
        """The address-set keys of a group's member addresses."""
        return {self.key('address', a) for p in state.group_members(group_id)
                for a in state.addresses_of(p)}

    @staticmethod
    def _zone_may_change(state, obj, old):
        """Whether a port change may change the zones where its groups'
        rules commit: it arrived or left (obj is old), or a local port
        came, went or changed its groups or protection."""
        if obj is old:
            return True
        if not any(state.is_local(p) for p in (obj, old) if p is not None):
            return False
        return obj is None or old is None or \
            obj.network_id != old.network_id or \
            obj.is_protected() != old.is_protected() or \
            obj.security_groups != old.security_groups

    def _naming(self, state, remote_id):
        """{(group id, direction, ethertype, conjunction id)} of the
        remote-group rules naming remote_id of the groups enforced here
        (kept until a rule changes, a group comes or goes, or one starts
        or stops being enforced here: every member address asks)."""
        local = state.local_group_zones()
        index = self._index(state)
        found = self._namings.get(remote_id)
        if found is not None and found[0] is index and \
                found[1] == state.group_zones_version:
            return found[2]
        out = set()
        for rule in state.rules_naming(remote_id):
            group_id = rule.security_group_id
            if group_id not in local:
                continue
            group = state.get('security_group', group_id)
            cid = None if group is None else self._remote_conj(
                state, group, remote_id, rule.direction, rule.ethertype)
            if cid is not None:
                out.add((group_id, rule.direction, rule.ethertype, cid))
        self._namings[remote_id] = (index, state.group_zones_version, out)
        return out

    def _address_flows(self, state, address):
        """Clause 3: from (ingress) or to (egress) this member address,
        for every local group's rules naming a remote group it is in."""
        # A normalised address (state.addresses_of): a host, or a prefix.
        version = 6 if ':' in address else 4
        actions = {}        # (direction, ethertype) -> conjunctions
        for remote_id in state.remote_groups_with(address):
            for _, direction, ethertype, cid in \
                    self._naming(state, remote_id):
                if VERSIONS[ethertype][0] == version:
                    actions.setdefault((direction, ethertype), set()).add(
                        ('conjunction', cid, 3, 3))
        out = []
        remote = _prefix(address) if '/' in address else address
        for (direction, ethertype), conjunctions in sorted(actions.items()):
            match = {'ct_state': pl.CT_STATE_NEW,
                     'eth_type': VERSIONS[ethertype][1]}
            if remote is not None:
                match[peer_field(direction, ethertype)] = remote
            out.append(self.flow(_rule_table(direction)[0], CONJ_PRIORITY,
                                 match, sorted(conjunctions)))
        return out

    def _conj_flows(self, state, remote_id):
        """What the rules naming a remote group allowed, committed in the
        zone of each network with a local protected port in their group."""
        zones = state.local_group_zones()
        out = []
        for group_id, direction, ethertype, cid in sorted(
                self._naming(state, remote_id)):
            table, _, nxt = _rule_table(direction)
            out += self._commits(table, CONJ_PRIORITY, nxt, cid, ethertype,
                                 zones[group_id])
        return out

    def _commits(self, table, priority, nxt, cid, ethertype, zones):
        """Commit what conjunction cid allowed in each of these zones."""
        eth_type = VERSIONS[ethertype][1]
        return [self.flow(table, priority, {
            'conj_id': cid, 'metadata': zone, 'eth_type': eth_type},
            [('ct', zone, None, True)], goto=nxt) for zone in sorted(zones)]

    def _service_flows(self, state, key):
        """Clause 2: a service some local groups' rules allow, for each of
        those groups (and each remote group they name)."""
        found = self._index(state).get(key)
        if found is None:
            return []
        table, match, named = found
        local = state.local_group_zones()
        direction = 'egress' if table == pl.EGRESS_SG else 'ingress'
        ethertype = 'IPv6' if match['eth_type'] == pl.ETH_IPV6 else 'IPv4'
        plain = key[0] == 'rules'
        actions = set()
        for group_id, remote_id in named:
            group = state.get('security_group', group_id)
            if group is None or group_id not in local:
                continue
            if plain:
                actions.add(('conjunction',
                             conj_id(group, direction, ethertype), 2, 2))
                continue
            cid = self._remote_conj(state, group, remote_id, direction,
                                    ethertype)
            if cid is not None:
                actions.add(('conjunction', cid, 2, 3))
        if not actions:
            return []
        return [self.flow(table, PLAIN_PRIORITY if plain else CONJ_PRIORITY,
                          match, sorted(actions))]

    def _commit_flows(self, state, group_id):
        """What a group's plain rules allowed, committed in the zone of
        each network with a local protected port in the group."""
        group = state.get('security_group', group_id)
        zones = state.local_group_zones().get(group_id)
        if group is None or not zones:
            return []
        out = []
        for direction, ethertype in sorted(self.shape(state, group_id).plain):
            table, _, nxt = _rule_table(direction)
            out += self._commits(table, PLAIN_PRIORITY, nxt, conj_id(
                group, direction, ethertype), ethertype, zones)
        return out


APP = SecurityGroupsApp
