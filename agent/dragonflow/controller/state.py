"""The controller's local view: NB objects it follows and local OVS ports.

Only the controller's main loop mutates it; apps read it to compute flows.
Per-network port lists (sorted, split local/remote) are what nearly every
app asks for on every recomputation: they are cached, and a mutation
drops what it can change (a port: its network's lists; a local
interface: those and the set of local networks; anything that changes
which networks are programmed here, or where ports are: everything), so
a batch of changes pays for each list once, not once per app, and one
port's change does not make the agent rescan every network.
"""
import collections
import functools
import ipaddress

# Objects indexed by the network they sit on.
NETWORK_TABLES = ('logical_port', 'subnet', 'logical_router_port')
# Objects indexed by the security group(s) they refer to.
GROUP_REFS = {'logical_port': 'security_groups',
              'security_group_rule': 'security_group_id'}


# Cached lists that depend on which ports are local (dropped with them).
LOCALITY = ('local_networks', 'local_set', 'programmed', 'lb_keys',
            'fw_keys', 'tap_keys', 'mcast_keys', 'local_ids')
# Cached keys of apps that depend on which ports are local (dropped also
# when a port is plugged into a network that is already local).
PLUGGED = ('fw_keys', 'tap_keys', 'local_ids')
# Tables whose objects decide nothing cached here (a security group's
# flows follow its rules and ports; its own fields are read as needed).
UNCACHED = ('trunk', 'port_pair', 'port_pair_group', 'flow_classifier',
            'port_chain', 'healthmonitor', 'security_group')
# Load balancer tables: they decide only the lb app's keys.
LB_TABLES = ('loadbalancer', 'listener', 'pool', 'member')
# Firewall tables: they decide only the fwaas app's keys and its index of
# the ports in groups.
FW_TABLES = ('firewall_rule', 'firewall_policy', 'firewall_group')
# Tap tables: they decide only the tap app's keys.
TAP_TABLES = ('tap_service', 'tap_flow')
# Multicast membership records: they decide only the multicast app's keys.
MCAST_TABLES = ('multicast_group',)


class _Watched(dict):
    """A dict that calls ``changed(key, added)`` before an entry is set
    (added) or removed (``changed(None, None)``: possibly all of them)."""

    def __init__(self, changed):
        super().__init__()
        self.changed = changed

    def __setitem__(self, key, value):
        self.changed(key, True)
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self.changed(key, False)
        super().__delitem__(key)

    def pop(self, key, *default):
        self.changed(key, False)
        return super().pop(key, *default)

    def update(self, *args, **kwargs):
        self.changed(None, None)
        super().update(*args, **kwargs)

    def clear(self):
        self.changed(None, None)
        super().clear()


class LocalState:
    def __init__(self, chassis_id):
        self.chassis_id = chassis_id
        self._cache = {}           # (what, network id) -> derived list
        self.objects = collections.defaultdict(dict)   # table -> id -> obj
        # network id -> table -> id -> obj, for ports and subnets
        self.by_network = collections.defaultdict(
            lambda: collections.defaultdict(dict))
        # security group id -> table -> id -> obj (member ports, rules)
        self.by_group = collections.defaultdict(
            lambda: collections.defaultdict(dict))
        # security group id -> rule id -> rule naming it as remote group
        self.by_remote = collections.defaultdict(dict)
        # member address -> security group id -> member ports with it
        self.member_addresses = collections.defaultdict(collections.Counter)
        # member address -> its memberships in groups some rule names as
        # remote group (kept as ports and rules change: remote_addresses
        # is asked on every change and walked every member address)
        self.remote_members = collections.Counter()
        # (network id, chassis id) -> ports of the network bound there
        self.bound = collections.Counter()
        # logical port id -> ofport (local only)
        self.ofports = _Watched(self._plugged)
        # Trunk subports: child port id -> its ChildPortSegmentation, and
        # parent port id -> {child port id: segmentation}.
        self.segments = {}
        self.children = collections.defaultdict(dict)
        self.tunnel_ofports = {}   # tunnel type -> ofport
        self.provider_ofports = {}  # physnet -> ofport of its br-int patch
        self.neighbours = {}        # (network id, ip) -> MAC, learned
        # Multicast membership records: (network id, group) -> chassis id
        # -> record; and this chassis' member ports -> their groups.
        self.mcast_groups = collections.defaultdict(dict)
        self.mcast_ports = collections.defaultdict(set)
        self.mcast_own = {}         # (network id, group) -> our record
        # Security group id -> Counter(zone: local protected ports in it),
        # what each port counts for, and the ports to count again (None:
        # all of them); see local_group_zones.
        self._group_zones = {}
        self._group_zones_of = {}
        self._group_zones_dirty = None
        self.group_zones_version = 0    # bumped when a group comes or goes

    # --- NB objects ------------------------------------------------------
    def put(self, obj):
        old = self.objects[obj.table].get(obj.id)
        self._changed(obj, old)
        if old is not None:
            self._unindex(old, replacing=True)
        self.objects[obj.table][obj.id] = obj
        net_id = getattr(obj, 'network_id', None)
        if net_id and obj.table in NETWORK_TABLES:
            self.by_network[net_id][obj.table][obj.id] = obj
        for group_id in _groups_of(obj):
            self.by_group[group_id][obj.table][obj.id] = obj
        if obj.table == 'logical_port':
            if obj.binding_chassis:
                self.bound[(obj.network_id, obj.binding_chassis)] += 1
            if obj.security_groups:
                for address in self.addresses_of(obj):
                    self.member_addresses[address].update(
                        obj.security_groups)
            self._recount_remote(old, obj)
        remote = getattr(obj, 'remote_group_id', None)
        if remote and obj.table == 'security_group_rule':
            first = remote not in self.by_remote
            self.by_remote[remote][obj.id] = obj
            if first:
                self._drop(keys=('sg_keys',))
                self._remote_group_counted(remote, 1)
        if obj.table == 'child_port_segmentation':
            self.segments[obj.port_id] = obj
            self.children[obj.parent_id][obj.port_id] = obj
        if obj.table in MCAST_TABLES:
            self._index_membership(obj)
        return old

    def remove(self, table, obj_id):
        old = self.objects[table].pop(obj_id, None)
        if old is not None:
            self._changed(old, None)
            self._unindex(old)
            if table == 'logical_port':
                self._recount_remote(old, None)
        return old

    # --- the cache -------------------------------------------------------
    def _drop(self, net_ids=(), keys=()):
        """Drop the cached lists of these networks and these keys."""
        if not self._cache:
            return
        net_ids = set(net_ids)
        for key in [k for k in self._cache
                    if k[1] in net_ids or k[0] in keys]:
            del self._cache[key]

    def _changed(self, obj, old):
        """obj (or old, for a removal) is about to be stored/removed."""
        table = obj.table
        if table in UNCACHED:
            return
        if table == 'floating_ip':
            self._drop(keys=('fips',))
        elif table in LB_TABLES:
            self._drop(keys=('lb_keys', 'lb_members'))
        elif table in FW_TABLES:
            self._drop(keys=('fw_keys', 'fw_port_groups'))
        elif table in TAP_TABLES:
            self._drop(keys=('tap_keys',))
        elif table in MCAST_TABLES:
            pass            # indexed in place (_index_membership)
        elif table == 'security_group_rule':
            self._drop(keys=('rules', 'sg_services'))
        elif table == 'logical_port' and obj.id not in self.children:
            nets = {o.network_id for o in (obj, old) if o is not None}
            local = self.wire(obj.id) is not None
            # A local port coming or going may change which networks are
            # local; an update in place does not.
            self._drop(nets, LOCALITY if local and (
                old is None or len(nets) > 1 or
                obj.network_id not in self._local_set()) else ())
            self._recount_zones(obj.id)
        else:
            # Networks, subnets, routers, chassis, trunk segments: they
            # may change which networks are programmed or where ports are.
            self._cache.clear()
            self._group_zones_dirty = None

    def _plugged(self, port_id, added):
        """A local interface came (added) or went."""
        port = self.get('logical_port', port_id) if port_id else None
        if port is None or port_id in self.children:
            self._cache.clear()
            self._group_zones_dirty = None
        else:
            self._recount_zones(port_id)
            # Plugging into a network that is already local changes no
            # network's locality; unplugging may (the last port).
            self._drop({port.network_id}, LOCALITY if not added or
                       port.network_id not in self._local_set() else
                       PLUGGED)

    def _recount_zones(self, port_id):
        """The port's part in local_group_zones may change."""
        if self._group_zones_dirty is not None:
            self._group_zones_dirty.add(port_id)

    def _local_set(self):
        return self._cached('local_set', None,
                            lambda _: frozenset(self.local_networks()))

    def _unindex(self, obj, replacing=False):
        net_id = getattr(obj, 'network_id', None)
        if net_id and obj.table in NETWORK_TABLES:
            self.by_network[net_id][obj.table].pop(obj.id, None)
        for group_id in _groups_of(obj):
            self.by_group[group_id][obj.table].pop(obj.id, None)
        if obj.table == 'logical_port' and obj.binding_chassis:
            where = (obj.network_id, obj.binding_chassis)
            self.bound[where] -= 1
            if self.bound[where] <= 0:
                del self.bound[where]
        if obj.table == 'logical_port' and obj.security_groups:
            for address in self.addresses_of(obj):
                counts = self.member_addresses[address]
                counts.subtract(obj.security_groups)
                for group_id in obj.security_groups:
                    if counts[group_id] <= 0:
                        del counts[group_id]
                if not counts:
                    del self.member_addresses[address]
        remote = getattr(obj, 'remote_group_id', None)
        if remote and obj.table == 'security_group_rule':
            self.by_remote[remote].pop(obj.id, None)
            if not self.by_remote[remote]:
                del self.by_remote[remote]
                self._drop(keys=('sg_keys',))
                self._remote_group_counted(remote, -1)
        if obj.table == 'child_port_segmentation':
            self.segments.pop(obj.port_id, None)
            self.children[obj.parent_id].pop(obj.port_id, None)
        if obj.table in MCAST_TABLES:
            self._unindex_membership(obj, replacing)

    def _recount_remote(self, old, new):
        """A port changed from old to new (either None): its addresses'
        counts of memberships in remote groups follow, by difference (a
        port written again as it was, its binding say, changes none)."""
        delta = collections.Counter()
        for port, sign in ((old, -1), (new, 1)):
            if port is not None and port.security_groups:
                times = sum(1 for group_id in port.security_groups
                            if group_id in self.by_remote)
                for address in self.addresses_of(port) if times else ():
                    delta[address] += sign * times
        for address, change in delta.items():
            self._add_remote(address, change)

    def _remote_group_counted(self, group_id, sign):
        """A group became (1) or stopped being (-1) a remote group: its
        member addresses' counts follow (one walk of its members; rule
        changes, not port changes)."""
        for port in self.group_members(group_id):
            times = port.security_groups.count(group_id)
            for address in self.addresses_of(port):
                self._add_remote(address, sign * times)

    def _add_remote(self, address, delta):
        if delta:
            left = self.remote_members[address] + delta
            if left > 0:
                if address not in self.remote_members:
                    self._drop(keys=('sg_keys',))
                self.remote_members[address] = left
            else:
                del self.remote_members[address]
                self._drop(keys=('sg_keys',))

    def _index_membership(self, record):
        group = (record.network_id, record.address)
        if group not in self.mcast_groups:
            self._drop(keys=('mcast_keys',))    # a group appears
        self.mcast_groups[group][record.chassis] = record
        if record.chassis == self.chassis_id:
            self.mcast_own[group] = record
            for port_id in record.ports:
                self.mcast_ports[port_id].add(group)

    def _unindex_membership(self, record, replacing):
        group = (record.network_id, record.address)
        records = self.mcast_groups.get(group, {})
        if replacing:       # a new version of it follows at once
            records[record.chassis] = None
        else:
            records.pop(record.chassis, None)
        if not records:
            self.mcast_groups.pop(group, None)
            self._drop(keys=('mcast_keys',))    # a group goes
        if record.chassis == self.chassis_id:
            self.mcast_own.pop(group, None)
            for port_id in record.ports:
                self.mcast_ports[port_id].discard(group)
                if not self.mcast_ports[port_id]:
                    del self.mcast_ports[port_id]

    def get(self, table, obj_id):
        return self.objects[table].get(obj_id)

    def network(self, net_id):
        return self.get('logical_switch', net_id)

    def chassis(self, chassis_id):
        return self.get('chassis', chassis_id)

    def subnets(self, net_id):
        return sorted(self.by_network[net_id]['subnet'].values(),
                      key=lambda s: s.id)

    def derived(self, what, compute):
        """A value computed from the whole state (compute()), kept until
        a change drops it (``lb_keys``: see _changed)."""
        return self._cached(what, None, lambda _: compute())

    def _cached(self, what, net_id, compute):
        key = (what, net_id)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = compute(net_id)
        return found

    def ports(self, net_id):
        """The network's ports, by id (the list is shared: do not
        modify it)."""
        return self._cached('ports', net_id, lambda n: sorted(
            self.by_network[n]['logical_port'].values(), key=lambda p: p.id))

    def port_ids(self, net_ids):
        """Ids of the ports of these networks (whose port_flows a chassis
        programming them installs)."""
        out = set()
        for net_id in net_ids:
            out |= self._cached('ids', net_id, lambda n: frozenset(
                self.by_network[n]['logical_port']))
        return out

    def port_by_ip(self, net_id, ip):
        """The network's port with that fixed IP, or None."""
        return self._cached('by_ip', net_id, lambda n: {
            i: p for p in self.ports(n) for i in p.ips}).get(ip)

    def paired_ports(self, net_id):
        """The network's ports with allowed address pairs."""
        return self._cached('paired', net_id, lambda n: [
            p for p in self.ports(n) if p.allowed_address_pairs])

    def router_ports(self, net_id):
        """Router interfaces on a network."""
        return sorted(self.by_network[net_id]['logical_router_port'].values(),
                      key=lambda p: p.id)

    def router_interfaces(self, router_id):
        return sorted((p for p in self.objects['logical_router_port'].values()
                       if p.router_id == router_id), key=lambda p: p.id)

    def routed_networks(self, net_id):
        """Networks reachable from net_id through one of its routers."""
        out = set()
        for rport in self.router_ports(net_id):
            for other in self.router_interfaces(rport.router_id):
                out.add(other.network_id)
        out.discard(net_id)
        return out

    # --- security groups -------------------------------------------------
    def local_group_zones(self):
        """{security group id: Counter(zone: its protected ports here on
        that network)}: the groups whose rules this chassis enforces, and
        where. Kept in place: only the ports changed, plugged or unplugged
        since the last call are counted again (all of them after a change
        that may move many: a network, a trunk). Shared: do not modify."""
        dirty = self._group_zones_dirty
        if dirty is None:
            dirty = set(self._group_zones_of) | self.local_port_ids()
        self._group_zones_dirty = set()
        zones = self._group_zones
        for port_id in dirty:
            for group_id, zone in self._group_zones_of.pop(port_id, ()):
                counts = zones[group_id]
                counts[zone] -= 1
                if counts[zone] <= 0:
                    del counts[zone]
                    if not counts:
                        del zones[group_id]
                        self.group_zones_version += 1
            port = self.get('logical_port', port_id)
            if port is None or not port.is_protected() or \
                    not self.is_local(port):
                continue
            network = self.network(port.network_id)
            if network is None:
                continue
            counted = tuple((g, network.unique_key)
                            for g in set(port.security_groups))
            self._group_zones_of[port_id] = counted
            for group_id, zone in counted:
                if group_id not in zones:
                    zones[group_id] = collections.Counter()
                    self.group_zones_version += 1
                zones[group_id][zone] += 1
        return zones

    def group_ports(self, group_id):
        """Every known port in a security group (any chassis)."""
        return sorted(self.group_members(group_id), key=lambda p: p.id)

    def group_members(self, group_id):
        """The ports of a security group in no order (for what does not
        depend on one: group_ports sorts a thousand members)."""
        return self.by_group[group_id]['logical_port'].values() \
            if group_id in self.by_group else ()

    def group_rules(self, group_id):
        """A group's rules, by id (the list is shared: do not modify)."""
        return self._cached('rules', group_id, lambda g: sorted(
            self.by_group[g]['security_group_rule'].values(),
            key=lambda r: r.id))

    def rules_naming(self, group_id):
        """Rules whose remote group is group_id."""
        return sorted(self.by_remote.get(group_id, {}).values(),
                      key=lambda r: r.id)

    def remote_groups(self):
        """Groups some rule names as its remote group."""
        return set(self.by_remote)

    @staticmethod
    def addresses_of(port):
        """A port's addresses and allowed address pairs, normalised (an
        address, or a prefix when shorter than a host)."""
        return {_normal(a) for a in port.ips} | {
            _normal(p['ip_address']) for p in port.allowed_address_pairs}

    def remote_addresses(self):
        """Member addresses of the remote groups."""
        return list(self.remote_members)

    def remote_groups_with(self, address):
        """The remote groups with a member that has this address."""
        return sorted(g for g in self.member_addresses.get(address, ())
                      if g in self.by_remote)

    # --- locality --------------------------------------------------------
    def wire(self, port_id):
        """(ofport, VLAN or None) a local port is reached through: its own
        interface, or its trunk parent's with the subport's VLAN; None if
        the port is not on this chassis."""
        ofport = self.ofports.get(port_id)
        if ofport is not None:
            return ofport, None
        segment = self.segments.get(port_id)
        if segment is not None and segment.parent_id in self.ofports:
            return self.ofports[segment.parent_id], segment.segmentation_id
        return None

    def is_local(self, port):
        return self.wire(port.id) is not None

    def local_port_ids(self):
        """Ids of the ports on this chassis: plugged ones and the
        subports of plugged trunk parents (a shared frozenset, kept until
        a port is plugged or unplugged or a trunk changes: several apps
        ask on every change, and building it walked every local port)."""
        return self._cached('local_ids', None, self._local_port_ids)

    def _local_port_ids(self, _):
        out = set(self.ofports)
        for parent in self.ofports:
            out.update(self.children.get(parent, ()))
        return frozenset(out)

    def output_actions(self, port):
        """Actions sending to a local port (a subport's frames get its
        VLAN tag, popped again so later outputs are untagged)."""
        ofport, vlan = self.wire(port.id)
        if vlan is None:
            return [('output', ofport)]
        return [('push_vlan', 0x8100),
                ('set_field', 'vlan_vid', 0x1000 | vlan),
                ('output', ofport), ('pop_vlan',)]

    def port_from_packet_in(self, msg):
        """The local port a packet-in came from: by its source port key
        (reg6, which tells subports apart), else by in_port."""
        key = msg.match.get('reg6') if hasattr(msg.match, 'get') else None
        if key:
            for port_id in self.local_port_ids():
                port = self.get('logical_port', port_id)
                if port is not None and port.unique_key == key:
                    return port
        return self.port_by_ofport(msg.match.get('in_port'))

    def send_to(self, port, data, send_packet):
        """Send a packet (untagged Ethernet) out to a local port."""
        send_packet(self.wire(port.id)[0], self.frame_for(port, data))

    def frame_for(self, port, data):
        """data as the port's wire carries it (802.1Q tag for a
        subport)."""
        vlan = self.wire(port.id)[1]
        if vlan is None:
            return data
        return bytes(data[:12]) + b'\x81\x00' + \
            (vlan & 0x0fff).to_bytes(2, 'big') + bytes(data[12:])

    def local_ports(self, net_id):
        return self._cached('local', net_id, self._local_ports)

    def _local_ports(self, net_id):
        local = self.local_port_ids()
        return [p for p in self.ports(net_id) if p.id in local]

    def remote_ports(self, net_id):
        """Ports bound to another known chassis."""
        return self._cached('remote', net_id, self._remote_ports)

    def _remote_ports(self, net_id):
        # is_remote, unrolled: this runs over every port of a network
        # each time one of them changes.
        me, known = self.chassis_id, self.objects['chassis']
        local = self.local_port_ids()
        return [p for p in self.ports(net_id)
                if p.binding_chassis and p.binding_chassis != me and
                p.binding_chassis in known and p.id not in local]

    def is_remote(self, port):
        """Bound to another chassis this chassis knows."""
        return bool(not self.is_local(port) and port.binding_chassis
                    and port.binding_chassis != self.chassis_id
                    and self.chassis(port.binding_chassis) is not None)

    def other_remote_ports_on(self, port):
        """Whether ports of port's network other than port itself are
        bound to its chassis and not on this one (its chassis stays in the
        network's remote chassis whether port comes or goes)."""
        chassis = port.binding_chassis
        count = self.bound[(port.network_id, chassis)]
        if self.get('logical_port', port.id) is port:
            count -= 1
        for port_id in self.local_port_ids():
            local = self.get('logical_port', port_id)
            if local is not None and local.id != port.id and \
                    local.network_id == port.network_id and \
                    local.binding_chassis == chassis:
                count -= 1
        return count > 0

    def remote_chassis(self, net_id):
        ids = sorted({p.binding_chassis for p in self.remote_ports(net_id)})
        return [self.chassis(c) for c in ids]

    def local_networks(self):
        """Networks with a port on this chassis (programmed_networks adds
        those their routers reach)."""
        return self._cached('local_networks', None, self._local_networks)

    def _local_networks(self, _):
        nets = set()
        for port_id in self.local_port_ids():
            port = self.get('logical_port', port_id)
            if port is not None and self.network(port.network_id):
                nets.add(port.network_id)
        return sorted(nets)

    def programmed_networks(self):
        """Networks this chassis programs: those of its local ports, the
        networks their routers reach (routing happens on the source
        chassis, so it needs the destination network's ports) and the
        external networks of those routers (NAT happens there too)."""
        return self._cached('programmed', None, self._programmed_networks)

    def _programmed_networks(self, _):
        local = set(self.local_networks())
        out = set(local)
        for net_id in local:
            out |= self.routed_networks(net_id)
            out |= {self.gateway_network(r) for r in self.routers_of(net_id)}
        out.discard(None)
        return sorted(n for n in out if self.network(n) is not None)

    # --- routers and NAT -------------------------------------------------
    def enabled_interfaces(self, net_id):
        """(router port, router) of each interface on a network whose
        router exists and is enabled."""
        out = []
        for rport in self.router_ports(net_id):
            router = self.get('logical_router', rport.router_id)
            if router is not None and router.enabled:
                out.append((rport, router))
        return out

    def routers_of(self, net_id):
        """Enabled routers with an interface on a network (one entry per
        interface)."""
        return [router for _, router in self.enabled_interfaces(net_id)]

    @staticmethod
    def gateway_network(router):
        gateway = router.external_gateway
        return gateway.get('network_id') if gateway else None

    def floating_ip_of(self, port_id):
        return self._cached('fips', None, lambda _: {
            fip.port_id: fip for fip in sorted(
                self.objects['floating_ip'].values(),
                key=lambda f: f.id, reverse=True)
            if fip.port_id and fip.fixed_ip_address}).get(port_id)

    def port_by_ofport(self, ofport):
        for port_id, number in self.ofports.items():
            if number == ofport:
                return self.get('logical_port', port_id)
        return None


@functools.lru_cache(maxsize=4096)
def _normal(address):
    net = ipaddress.ip_network(address, strict=False)
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def _groups_of(obj):
    attr = GROUP_REFS.get(obj.table)
    if attr is None:
        return ()
    value = getattr(obj, attr, None)
    if not value:
        return ()
    return value if isinstance(value, (list, tuple)) else (value,)
