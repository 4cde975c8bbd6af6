"""Distributed load balancing (tables 40-43 and 102): a VIP is served on
the chassis of each client, with no central hop and no load-balancer VM.

A client's packet to VIP:port (from the VIP's network or from a network
routed to it) is caught before L2 (table 40) on the client's chassis, gets
its listener's key in ``reg2`` and goes through conntrack in the LB zone
with NAT restored. A new connection (41) is hashed by ``multipath`` into a
slot (``reg3``) — the 5-tuple for ROUND_ROBIN and SOURCE_IP_PORT, the
client address for SOURCE_IP — and the slot's flow (42) commits it with a
DNAT to its member's address and port. Each member has slots in
proportion to its weight (modulo-N over all slots), so weights hold;
members that are disabled, of weight 0 or reported down have none, and
backups have slots only when no other member is up. With session
persistence (SOURCE_IP) the slot's flow also makes the switch learn
(table 43) the client's member for the listener, idle timeout = the
persistence timeout: the client's next connections go to that member
while it takes connections (else to a slot again, which learns anew).
Once DNATed (new or established) the packet is sent to the member's MAC,
or to the router's when the member is on another network, and L2/L3
carry it on (table 55).

The member's reply reaches the client's chassis (it is the destination);
table 102, before the ingress security groups, looks up what comes from
a member's address and port in the LB zone and un-DNATs it (the VIP as
its source) when it is a valid reply. Established connections keep their
member when the set of members changes (conntrack remembers the DNAT);
only new connections see the new slots. The OpenFlow ``select`` group
cannot hash on the source address alone in OpenFlow 1.3
(``selection_method`` is an OpenFlow 1.5 extension), so every algorithm
uses one mechanism: multipath into a register. Flows are keyed by
(listener, client network): a change of a load balancer object, of a
member's port or of a router interface recomputes only the listeners it
touches, whatever the number of ports on the network.
"""
import ipaddress

from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl
from dragonflow.model import loadbalancer as lbm

PROTO = {'tcp': 6, 'udp': 17}
# multipath fields (ovs-actions(7)): symmetric_l3l4+udp, nw_src
HASH_5TUPLE, HASH_SOURCE = 3, 4
HASH_FIELDS = {'ROUND_ROBIN': HASH_5TUPLE, 'SOURCE_IP_PORT': HASH_5TUPLE,
               'SOURCE_IP': HASH_SOURCE}
DOWN = ('ERROR', 'OFFLINE')
LB_TABLES = ('loadbalancer', 'listener', 'pool', 'member', 'healthmonitor')


def l4_match(proto, field, port):
    return {f'{proto}_{field}': port}


def members_of(state, pool_id):
    return sorted((m for m in state.objects['member'].values()
                   if m.pool_id == pool_id), key=lambda m: m.id)


def serving(members):
    """The members that take new connections: up, enabled, of non-zero
    weight; backups only when no other member does."""
    def usable(m):
        return m.admin_state_up and m.weight > 0 and \
            m.operating_status not in DOWN
    primary = [m for m in members if usable(m) and not m.backup]
    return primary or [m for m in members if usable(m) and m.backup]


def slot_members(members):
    """The member of each hash slot, in slot order."""
    chosen = serving(members)
    out = []
    for member, count in zip(chosen, lbm.slots([m.weight for m in chosen])):
        out += [member] * count
    return out


def _ip_int(address):
    return int(ipaddress.IPv4Address(address))


def _on_network(state, member, net_id):
    subnet = state.get('subnet', member.subnet_id)
    return subnet is not None and subnet.network_id == net_id


def members_on(state, ports):
    """The members whose address is a fixed IP of one of these ports."""
    def index():
        out = {}
        for member in state.objects['member'].values():
            subnet = state.get('subnet', member.subnet_id)
            if subnet is not None:
                out.setdefault((subnet.network_id, member.address),
                               []).append(member)
        return out
    by_address = state.derived('lb_members', index)
    return [m for p in ports for ip in p.ips
            for m in by_address.get((p.network_id, ip), ())]


def load_balancers_of(state, members):
    pools = {m.pool_id for m in members}
    ids = {p.loadbalancer_id for p in state.objects['pool'].values()
           if p.id in pools}
    return [lb for lb in state.objects['loadbalancer'].values()
            if lb.id in ids]


def vip_ports_of(state, ports):
    """VIP ports whose floating IP's chassis these ports (members) pick."""
    return {lb.vip_port_id for lb in load_balancers_of(
        state, members_on(state, ports))
        if lb.vip_port_id and state.floating_ip_of(lb.vip_port_id)}


def _lb_of_vip(state, vip):
    return next((lb for lb in state.objects['loadbalancer'].values()
                 if lb.vip_address == vip), None)


def vip_load_balancer(state, port):
    """The load balancer whose VIP port this is, or None."""
    if port.device_owner != lbm.VIP_OWNER:
        return None
    return next((lb for lb in state.objects['loadbalancer'].values()
                 if lb.vip_port_id == port.id), None)


def fip_chassis(state, lb):
    """(floating IP of the VIP, the chassis serving it) or (fip, None) or
    (None, None). The chassis: the first (by id) of those hosting a member
    that have an address on the floating IP's external network; every
    chassis with the load balancer's networks computes the same one."""
    fip = state.floating_ip_of(lb.vip_port_id)
    if fip is None:
        return None, None
    external = [sub for sub in state.subnets(fip.floating_network_id)
                if sub.network.version == 4]
    candidates = set()
    for listener in state.objects['listener'].values():
        if listener.loadbalancer_id != lb.id or not listener.default_pool_id:
            continue
        for member in members_of(state, listener.default_pool_id):
            subnet = state.get('subnet', member.subnet_id)
            port = state.port_by_ip(subnet.network_id, member.address) \
                if subnet is not None else None
            chassis = state.chassis(port.binding_chassis) \
                if port is not None and port.binding_chassis else None
            if chassis is not None and chassis.external_host_ip and any(
                    sub.contains(chassis.external_host_ip)
                    for sub in external):
                candidates.add(chassis.id)
    return fip, (min(candidates) if candidates else None)


def serves_fip(state, lb):
    """Whether this chassis serves the floating IP of lb's VIP."""
    return fip_chassis(state, lb)[1] == state.chassis_id


def lb_networks(state, lb):
    """The networks whose clients reach the VIP: its own and those routed
    to it."""
    if lb.vip_network_id is None:
        return set()
    return {lb.vip_network_id} | state.routed_networks(lb.vip_network_id)


class LbApp(apps.App):
    name = 'lb'
    cookie = 17

    def global_flows(self, state):
        return [
            self.flow(pl.LB_VIP, 0, goto=pl.PASS_THROUGH[pl.LB_VIP]),
            self.flow(pl.LB_SELECT, 0),
            self.flow(pl.LB_MEMBER, 0),
            self.flow(pl.LB_AFFINITY, 0),
            self.flow(pl.INGRESS_LB, 0, goto=pl.PASS_THROUGH[pl.INGRESS_LB]),
        ]

    # Flows are keyed so that a change touches what depends on it alone,
    # whatever the size of the network: per (listener, client network)
    # the VIP, selection and slot flows; per (member, listener, network)
    # the flows carrying the member's MAC; per backend (address, port,
    # protocol, network) the reply flows, shared by every listener whose
    # pool has that backend (one flow per match: two load balancers may
    # share a backend); per (VIP, backend, network) a hairpin reply.
    def keys(self, state):
        # Called on every change: kept in the state until a load balancer
        # object, a router or the set of programmed networks changes.
        return state.derived('lb_keys', lambda: frozenset(
            self._keys(state)))

    def _keys(self, state):
        programmed = set(state.programmed_networks())
        out = set()
        for listener, lb, nets in self._listeners(state):
            nets &= programmed
            if not nets:
                continue
            proto = lbm.L4[listener.protocol]
            members = members_of(state, listener.default_pool_id) \
                if listener.default_pool_id else []
            for net_id in nets:
                out.add(self.key('listener', (listener.id, net_id)))
                for m in members:
                    backend = (m.address, m.protocol_port, proto, net_id)
                    out.add(self.key('member', (m.id, listener.id, net_id)))
                    out.add(self.key('backend', backend))
                    if _on_network(state, m, net_id):
                        out.add(self.key('hairpin',
                                         (lb.vip_address,) + backend))
                    if net_id == lb.vip_network_id:
                        out.add(self.key('fip', (lb.vip_address,) + backend))
        return out

    @staticmethod
    def _listeners(state):
        """(listener, load balancer, the networks whose clients reach
        it) of enabled load balancers."""
        out = []
        for listener in state.objects['listener'].values():
            lb = state.get('loadbalancer', listener.loadbalancer_id)
            if lb is not None and lb.admin_state_up:
                out.append((listener, lb, lb_networks(state, lb)))
        return out

    def key_flows(self, state, key):
        kind, what = key[1], key[2]
        if kind == 'backend':
            return self._backend_flows(state, *what)
        if kind == 'hairpin':
            return self._hairpin_reply_flows(state, *what)
        if kind == 'fip':
            return self._fip_reply_flows(state, *what)
        listener_id, net_id = what[-2:]
        listener = state.get('listener', listener_id)
        network = state.network(net_id)
        if listener is None or network is None:
            return []
        lb = state.get('loadbalancer', listener.loadbalancer_id)
        pool = state.get('pool', listener.default_pool_id) \
            if listener.default_pool_id else None
        if lb is None or pool is None or not listener.admin_state_up or \
                not pool.admin_state_up:
            return []
        if kind == 'listener':
            return self._listener_flows(state, network, lb, listener, pool)
        member = state.get('member', what[0])
        if member is None:
            return []
        return self._member_flows(state, network, lb, listener, member)

    def touched_keys(self, state, table, obj, old):
        objs = [o for o in (obj, old) if o is not None]
        if table == 'logical_port':
            # A member's port: its MAC is in its member flows, its binding
            # may choose another chassis for its VIP's floating IP.
            members = members_on(state, objs)
            if not members:
                return set()
            lbs = [lb for lb in load_balancers_of(state, members)
                   if state.floating_ip_of(lb.vip_port_id)]
            ids = {m.id for m in members}
            return self._fip_keys(state, lbs) | {
                k for k in self.keys(state)
                if k[1] == 'member' and k[2][0] in ids}
        if table == 'floating_ip':
            lbs = [lb for lb in state.objects['loadbalancer'].values()
                   if lb.vip_port_id in {o.port_id for o in objs}]
            return self._fip_keys(state, lbs)
        if table == 'logical_router_port':
            # Router MACs are in the member flows of routed members.
            nets = {o.network_id for o in objs}
            return {k for k in self.keys(state)
                    if k[1] == 'member' and k[2][-1] in nets}
        if table not in LB_TABLES:
            return set()
        keys = self.keys(state)
        if table == 'member':
            # Its own flows, and the slots of its pool's listeners.
            ids = {o.id for o in objs}
            pools = {o.pool_id for o in objs}
            return {k for k in keys if k[1] == 'member' and k[2][0] in ids} \
                | {k for k in keys if k[1] == 'listener' and
                   self._uses(state, k[2][0], (), pools)}
        if table == 'listener':
            ids = {o.id for o in objs}
            return {k for k in keys if k[1] in ('listener', 'member') and
                    k[2][-2] in ids}
        lb_ids = {o.id for o in objs} if table == 'loadbalancer' else set()
        pools = {o.id for o in objs} if table == 'pool' else \
            {o.pool_id for o in objs} if table == 'healthmonitor' else set()
        return {k for k in keys if k[1] in ('listener', 'member') and
                self._uses(state, k[2][-2], lb_ids, pools)}

    def _fip_keys(self, state, lbs):
        """The keys whose flows depend on where lbs' floating IPs are
        served."""
        ids = {lb.id for lb in lbs}
        vips = {lb.vip_address for lb in lbs}
        return {k for k in self.keys(state)
                if (k[1] in ('hairpin', 'fip') and k[2][0] in vips) or
                (k[1] == 'member' and self._uses(state, k[2][1], ids, ()))}

    def tick(self, state, send_packet):
        """The VIP port of a floating IP served here is bound here: the
        other chassis tunnel what members send to the VIP to this one."""
        bindings = {}
        for lb in state.objects['loadbalancer'].values():
            port = state.get('logical_port', lb.vip_port_id)
            if port is not None and serves_fip(state, lb) and \
                    port.binding_chassis != state.chassis_id:
                bindings[port.id] = state.chassis_id
        if bindings and hasattr(self.controller, '_write_bindings'):
            self.controller._write_bindings(bindings)

    @staticmethod
    def _uses(state, listener_id, lb_ids, pools):
        """Whether the listener is of these load balancers or uses one of
        these pools."""
        listener = state.get('listener', listener_id)
        return listener is not None and (
            listener.loadbalancer_id in lb_ids or
            listener.default_pool_id in pools)

    def _listener_flows(self, state, network, lb, listener, pool):
        """The VIP, the selection and the slots of a listener."""
        proto = lbm.L4[listener.protocol]
        meta = network.unique_key
        base = {'metadata': meta, 'eth_type': pl.ETH_IP,
                'ip_proto': PROTO[proto]}
        key = listener.unique_key
        mine = {'metadata': meta, pl.REG_LISTENER: key}
        members = members_of(state, pool.id)
        out = [
            self.flow(pl.LB_VIP, 100, dict(
                base, ipv4_dst=lb.vip_address,
                **l4_match(proto, 'dst', listener.protocol_port)),
                [('set_field', pl.REG_LISTENER, key),
                 ('ct', pl.LB_ZONE, pl.LB_SELECT, False, 'restore')]),
        ]
        slots = slot_members(members)
        persistence = pool.session_persistence
        if slots:
            pick = [('multipath', HASH_FIELDS[pool.lb_algorithm],
                     len(slots), pl.REG_SLOT), ('resubmit', pl.LB_MEMBER)]
            if persistence:
                pick = [('set_field', pl.REG_AFFINITY, 0),
                        ('resubmit', pl.LB_AFFINITY)] + pick
            out.append(self.flow(
                pl.LB_SELECT, 50, dict(mine, ct_state=pl.CT_STATE_NEW),
                pick))
        # NAT to a port needs the L4 protocol in the match.
        to_member = dict(base, **{pl.REG_LISTENER: key})
        for i, member in enumerate(slots):
            commit = [('ct', pl.LB_ZONE, pl.LB_SELECT, True,
                       ('dst', member.address, member.protocol_port))]
            if persistence:
                commit.insert(0, self._learn(key, member, persistence))
            out.append(self.flow(pl.LB_MEMBER, 100,
                                 dict(to_member, **{pl.REG_SLOT: i}),
                                 commit))
        if persistence:
            # A client's learned member, while it takes connections.
            for member in {m.id: m for m in slots}.values():
                out.append(self.flow(
                    pl.LB_MEMBER, 110, dict(to_member, **{
                        pl.REG_AFFINITY: _ip_int(member.address)}),
                    [('ct', pl.LB_ZONE, pl.LB_SELECT, True,
                      ('dst', member.address, member.protocol_port))]))
        return out

    def _member_flows(self, state, network, lb, listener, member):
        """A member's flows for a listener, also while it is drained or
        down (its established connections go on): once DNATed, to its
        MAC (or the router's); hairpin."""
        mac = self._next_hop_mac(state, network, member)
        if mac is None:
            return []
        proto = lbm.L4[listener.protocol]
        base = {'metadata': network.unique_key, 'eth_type': pl.ETH_IP,
                'ip_proto': PROTO[proto]}
        out = [self.flow(
            pl.LB_SELECT, 100, dict(
                base, ipv4_dst=member.address, ct_state=pl.CT_STATE_DNAT,
                **{pl.REG_LISTENER: listener.unique_key},
                **l4_match(proto, 'dst', member.protocol_port)),
            [('set_field', 'eth_dst', mac)], goto=pl.L2_LOOKUP)]
        if _on_network(state, member, network.id):
            out += self._hairpin_flows(base, proto, lb, listener, member,
                                       mac)
        if network.id == lb.vip_network_id and serves_fip(state, lb):
            out += self._from_outside_flows(state, base, proto, lb,
                                            listener, member, mac,
                                            _on_network(state, member,
                                                        network.id))
        return out

    def _from_outside_flows(self, state, base, proto, lb, listener, member,
                            mac, hairpin):
        """On the chassis serving the VIP's floating IP, a connection from
        outside (reg0 = 1) is also SNATed to the VIP, so that the member
        answers to the VIP, which is bound here; the mark (the VIP port's
        key) says so on the way back."""
        vip_port = state.get('logical_port', lb.vip_port_id)
        if vip_port is None:
            return []
        key = listener.unique_key
        m, vip, port = member.address, lb.vip_address, member.protocol_port
        out = [self.flow(pl.LB_SELECT, 115, dict(
            base, ipv4_dst=m, ct_state=pl.CT_STATE_DNAT,
            **{pl.REG_FROM_FIP: 1, pl.REG_LISTENER: key},
            **l4_match(proto, 'dst', port)),
            [('ct', pl.HAIRPIN_ZONE, pl.LB_SELECT, True, ('src', vip),
              vip_port.unique_key)])]
        if not hairpin:     # else _hairpin_flows has it
            out.append(self.flow(pl.LB_SELECT, 105, dict(
                base, ipv4_src=vip, ipv4_dst=m, ct_state=pl.CT_STATE_VALID,
                **{pl.REG_LISTENER: key}, **l4_match(proto, 'dst', port)),
                [('set_field', 'eth_dst', mac)], goto=pl.L2_LOOKUP))
        return out

    def _backend_flows(self, state, address, port, proto, net_id):
        """What comes from a backend (address and port): its replies."""
        network = state.network(net_id)
        if network is None:
            return []
        base = {'metadata': network.unique_key, 'eth_type': pl.ETH_IP,
                'ip_proto': PROTO[proto]}
        match = dict(base, ipv4_src=address, **l4_match(proto, 'src', port))
        out = self._reply_flows(match)
        if any(s.contains(address) for s in state.subnets(net_id)):
            # A hairpin reply, back to member -> member: un-DNATed.
            out.append(self.flow(pl.LB_SELECT, 110, dict(
                match, ipv4_dst=address, **{pl.REG_LISTENER: 0}),
                [('ct', pl.LB_ZONE, pl.LB_SELECT, False, 'restore')]))
        return out

    def _hairpin_reply_flows(self, state, vip, address, port, proto,
                             net_id):
        """A backend answering a connection whose source is the VIP (a
        hairpin, or one from outside through the VIP's floating IP): the
        SNAT to the VIP undone where it was made (hairpin: here); what
        conntrack does not know here goes on to the VIP's port, bound to
        the chassis serving its floating IP."""
        network = state.network(net_id)
        if network is None:
            return []
        match = {'metadata': network.unique_key, 'eth_type': pl.ETH_IP,
                 'ip_proto': PROTO[proto], 'ipv4_src': address,
                 **l4_match(proto, 'src', port)}
        out = [
            self.flow(pl.LB_VIP, 110, dict(match, ipv4_dst=vip),
                      [('ct', pl.HAIRPIN_ZONE, pl.LB_SELECT, False,
                        'restore')]),
            self.flow(pl.LB_SELECT, 90, dict(
                match, ipv4_dst=vip, **{pl.REG_LISTENER: 0}),
                goto=pl.L2_LOOKUP)]
        lb = _lb_of_vip(state, vip)
        if lb is not None and serves_fip(state, lb):
            out.append(self._fip_reply(pl.LB_SELECT, dict(
                match, **{pl.REG_LISTENER: 0}), state, lb))
        return out

    def _fip_reply_flows(self, state, vip, address, port, proto, net_id):
        """On the chassis serving the VIP's floating IP: a backend's
        answer to a connection from outside (sent to the VIP, its SNATed
        source) arrives here; un-SNATed, un-DNATed, then out through the
        floating IP's NAT."""
        network = state.network(net_id)
        lb = _lb_of_vip(state, vip)
        if network is None or lb is None or not serves_fip(state, lb):
            return []
        match = {'metadata': network.unique_key, 'eth_type': pl.ETH_IP,
                 'ip_proto': PROTO[proto], 'ipv4_src': address,
                 **l4_match(proto, 'src', port)}
        return [
            self.flow(pl.INGRESS_LB, 120, dict(match, ipv4_dst=vip),
                      [('ct', pl.HAIRPIN_ZONE, pl.INGRESS_LB, False,
                        'restore')]),
            self._fip_reply(pl.INGRESS_LB, match, state, lb)]

    def _fip_reply(self, table, match, state, lb):
        """Un-SNATed (ct_mark = the VIP port's key: it came from outside):
        un-DNAT in the LB zone, then the floating IP's NAT (table 70) as
        from the VIP's port."""
        vip_port = state.get('logical_port', lb.vip_port_id)
        key = vip_port.unique_key if vip_port is not None else 0
        return self.flow(table, 80 if table == pl.LB_SELECT else 120, dict(
            match, ct_zone=pl.HAIRPIN_ZONE, ct_mark=key),
            [('set_field', pl.REG_SRC, key),
             ('ct', pl.LB_ZONE, pl.EGRESS_NAT, False, 'restore')])

    @staticmethod
    def _learn(key, member, persistence):
        """Session persistence: the switch learns, for this listener and
        the client's address, the member just drawn; the flow expires
        after persistence_timeout without a new connection."""
        return ('learn', pl.LB_AFFINITY,
                persistence['persistence_timeout'],
                ((pl.ETH_IP, 'eth_type', 16),),
                ((pl.REG_LISTENER, 32), ('ipv4_src', 32)),
                ((_ip_int(member.address), pl.REG_AFFINITY, 32),))

    def _reply_flows(self, match):
        """What comes from a member's address and port: looked up in the
        LB zone first without NAT, and un-DNATed only as a valid reply.
        A NAT lookup alone would also rewrite the answers of a direct
        connection that happens to reuse the 5-tuple of an old balanced
        one (a client talking to a member both ways): conntrack calls
        those invalid, and they go on untouched."""
        looked_up = dict(match, ct_zone=pl.LB_ZONE)
        return [
            self.flow(pl.INGRESS_LB, 100, match,
                      [('ct', pl.LB_ZONE, pl.INGRESS_LB, False)]),
            self.flow(pl.INGRESS_LB, 110,
                      dict(looked_up, ct_state=pl.CT_STATE_REPLY),
                      [('ct', pl.LB_ZONE, pl.TAP_IN_PRE, False, 'restore')]),
            self.flow(pl.INGRESS_LB, 105, looked_up, goto=pl.TAP_IN_PRE),
        ]

    def _hairpin_flows(self, base, proto, lb, listener, member, mac):
        """A member connecting to its own VIP and drawn for it: SNATed to
        the VIP (its kernel drops packets from its own address), in a
        zone of its own since the LB zone already DNATed the connection;
        its replies, to the VIP, are un-SNATed (a ``hairpin`` key), then
        un-DNATed (its ``backend`` key), then sent back to it here."""
        key = listener.unique_key
        m, vip = member.address, lb.vip_address
        port, vport = member.protocol_port, listener.protocol_port
        return [
            self.flow(pl.LB_SELECT, 110, dict(
                base, ipv4_src=m, ipv4_dst=m, ct_state=pl.CT_STATE_DNAT,
                **{pl.REG_LISTENER: key}, **l4_match(proto, 'dst', port)),
                [('ct', pl.HAIRPIN_ZONE, pl.LB_SELECT, True,
                  ('src', vip))]),
            self.flow(pl.LB_SELECT, 105, dict(
                base, ipv4_src=vip, ipv4_dst=m, ct_state=pl.CT_STATE_VALID,
                **{pl.REG_LISTENER: key}, **l4_match(proto, 'dst', port)),
                [('set_field', 'eth_dst', mac)], goto=pl.L2_LOOKUP),
            self.flow(pl.LB_SELECT, 105, dict(
                base, ipv4_src=vip, ipv4_dst=m, **{pl.REG_LISTENER: 0},
                **l4_match(proto, 'src', vport)),
                [('set_field', 'eth_dst', mac)], goto=pl.L2_LOOKUP),
        ]

    @staticmethod
    def _next_hop_mac(state, network, member):
        """The member's MAC if it is on the client's network, else the MAC
        of the client network's router that reaches the member."""
        subnet = state.get('subnet', member.subnet_id)
        if subnet is None:
            return None
        if subnet.network_id == network.id:
            port = state.port_by_ip(network.id, member.address)
            return port.macs[0] if port is not None and port.macs else None
        for rport in state.router_ports(network.id):
            if any(other.network_id == subnet.network_id for other in
                   state.router_interfaces(rport.router_id)):
                return rport.mac
        return None


APP = LbApp
