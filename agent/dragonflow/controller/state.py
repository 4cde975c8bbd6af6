"""The controller's local view: NB objects it follows and local OVS ports.

Only the controller's main loop mutates it; apps read it to compute flows.
"""
import collections

# Objects indexed by the network they sit on.
NETWORK_TABLES = ('logical_port', 'subnet', 'logical_router_port')
# Objects indexed by the security group(s) they refer to.
GROUP_REFS = {'logical_port': 'security_groups',
              'security_group_rule': 'security_group_id'}


class LocalState:
    def __init__(self, chassis_id):
        self.chassis_id = chassis_id
        self.objects = collections.defaultdict(dict)   # table -> id -> obj
        # network id -> table -> id -> obj, for ports and subnets
        self.by_network = collections.defaultdict(
            lambda: collections.defaultdict(dict))
        # security group id -> table -> id -> obj (member ports, rules)
        self.by_group = collections.defaultdict(
            lambda: collections.defaultdict(dict))
        self.ofports = {}          # logical port id -> ofport (local only)
        # Trunk subports: child port id -> its ChildPortSegmentation, and
        # parent port id -> {child port id: segmentation}.
        self.segments = {}
        self.children = collections.defaultdict(dict)
        self.tunnel_ofports = {}   # tunnel type -> ofport
        self.provider_ofports = {}  # physnet -> ofport of its br-int patch
        self.neighbours = {}        # (network id, ip) -> MAC, learned

    # --- NB objects ------------------------------------------------------
    def put(self, obj):
        old = self.objects[obj.table].get(obj.id)
        if old is not None:
            self._unindex(old)
        self.objects[obj.table][obj.id] = obj
        net_id = getattr(obj, 'network_id', None)
        if net_id and obj.table in NETWORK_TABLES:
            self.by_network[net_id][obj.table][obj.id] = obj
        for group_id in _groups_of(obj):
            self.by_group[group_id][obj.table][obj.id] = obj
        if obj.table == 'child_port_segmentation':
            self.segments[obj.port_id] = obj
            self.children[obj.parent_id][obj.port_id] = obj
        return old

    def remove(self, table, obj_id):
        old = self.objects[table].pop(obj_id, None)
        if old is not None:
            self._unindex(old)
        return old

    def _unindex(self, obj):
        net_id = getattr(obj, 'network_id', None)
        if net_id and obj.table in NETWORK_TABLES:
            self.by_network[net_id][obj.table].pop(obj.id, None)
        for group_id in _groups_of(obj):
            self.by_group[group_id][obj.table].pop(obj.id, None)
        if obj.table == 'child_port_segmentation':
            self.segments.pop(obj.port_id, None)
            self.children[obj.parent_id].pop(obj.port_id, None)

    def get(self, table, obj_id):
        return self.objects[table].get(obj_id)

    def network(self, net_id):
        return self.get('logical_switch', net_id)

    def chassis(self, chassis_id):
        return self.get('chassis', chassis_id)

    def subnets(self, net_id):
        return sorted(self.by_network[net_id]['subnet'].values(),
                      key=lambda s: s.id)

    def ports(self, net_id):
        return sorted(self.by_network[net_id]['logical_port'].values(),
                      key=lambda p: p.id)

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
    def group_ports(self, group_id):
        """Every known port in a security group (any chassis)."""
        return sorted(self.by_group[group_id]['logical_port'].values(),
                      key=lambda p: p.id)

    def group_rules(self, group_id):
        return sorted(self.by_group[group_id]['security_group_rule'].values(),
                      key=lambda r: r.id)

    def groups_referring_to(self, group_ids):
        """Groups with a rule whose remote group is one of group_ids."""
        out = set()
        for rule in self.objects['security_group_rule'].values():
            if rule.remote_group_id in group_ids:
                out.add(rule.security_group_id)
        return out

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
        subports of plugged trunk parents."""
        out = set(self.ofports)
        for parent in self.ofports:
            out.update(self.children.get(parent, ()))
        return out

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
        return [p for p in self.ports(net_id) if self.is_local(p)]

    def remote_ports(self, net_id):
        """Ports bound to another known chassis."""
        return [p for p in self.ports(net_id)
                if not self.is_local(p) and p.binding_chassis
                and p.binding_chassis != self.chassis_id
                and self.chassis(p.binding_chassis) is not None]

    def remote_chassis(self, net_id):
        ids = sorted({p.binding_chassis for p in self.remote_ports(net_id)})
        return [self.chassis(c) for c in ids]

    def local_networks(self):
        """Networks with a port on this chassis (programmed_networks adds
        those their routers reach)."""
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
        for fip in self.objects['floating_ip'].values():
            if fip.port_id == port_id and fip.fixed_ip_address:
                return fip
        return None

    def port_by_ofport(self, ofport):
        for port_id, number in self.ofports.items():
            if number == ofport:
                return self.get('logical_port', port_id)
        return None


def _groups_of(obj):
    attr = GROUP_REFS.get(obj.table)
    if attr is None:
        return ()
    value = getattr(obj, attr, None)
    if not value:
        return ()
    return value if isinstance(value, (list, tuple)) else (value,)
