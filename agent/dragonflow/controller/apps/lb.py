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
uses one mechanism: multipath into a register. Flows are a network's
(``network_flows``), built for every listener reachable from the network.
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


def listeners_of(state, lb_id):
    return [li for li in state.objects['listener'].values()
            if li.loadbalancer_id == lb_id]


def members_of(state, pool_id):
    return sorted((m for m in state.objects['member'].values()
                   if m.pool_id == pool_id), key=lambda m: m.id)


def serving(members):
    """(member, weight) that take new connections: up, enabled, weighted;
    backups only when no other member does."""
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

    def network_flows(self, state, network):
        out = []
        for lb in sorted(state.objects['loadbalancer'].values(),
                         key=lambda b: b.id):
            if not lb.admin_state_up or \
                    network.id not in lb_networks(state, lb):
                continue
            for listener in sorted(listeners_of(state, lb.id),
                                   key=lambda li: li.id):
                pool = state.get('pool', listener.default_pool_id) \
                    if listener.default_pool_id else None
                if pool is None or not listener.admin_state_up or \
                        not pool.admin_state_up:
                    continue
                out += self._listener_flows(state, network, lb, listener,
                                            pool)
        return out

    def _listener_flows(self, state, network, lb, listener, pool):
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
        # Every member, also drained or down ones: their established
        # connections go on.
        for member in members:
            mac = self._next_hop_mac(state, network, member)
            to_member = dict(base, ipv4_dst=member.address, **l4_match(
                proto, 'dst', member.protocol_port))
            if mac is not None:
                out.append(self.flow(
                    pl.LB_SELECT, 100, dict(
                        to_member, ct_state=pl.CT_STATE_DNAT,
                        **{pl.REG_LISTENER: key}),
                    [('set_field', 'eth_dst', mac)], goto=pl.L2_LOOKUP))
            out += self._reply_flows(base, proto, member)
            if mac is not None and network.id == state.get(
                    'subnet', member.subnet_id).network_id:
                out += self._hairpin_flows(base, proto, lb, listener,
                                           member, mac)
        return out

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

    def _reply_flows(self, base, proto, member):
        """What comes from a member's address and port: looked up in the
        LB zone first without NAT, and un-DNATed only as a valid reply.
        A NAT lookup alone would also rewrite the answers of a direct
        connection that happens to reuse the 5-tuple of an old balanced
        one (a client talking to a member both ways): conntrack calls
        those invalid, and they go on untouched."""
        match = dict(base, ipv4_src=member.address,
                     **l4_match(proto, 'src', member.protocol_port))
        looked_up = dict(match, ct_zone=pl.LB_ZONE)
        return [
            self.flow(pl.INGRESS_LB, 100, match,
                      [('ct', pl.LB_ZONE, pl.INGRESS_LB, False)]),
            self.flow(pl.INGRESS_LB, 110,
                      dict(looked_up, ct_state=pl.CT_STATE_REPLY),
                      [('ct', pl.LB_ZONE, pl.INGRESS_CT, False, 'restore')]),
            self.flow(pl.INGRESS_LB, 105, looked_up, goto=pl.INGRESS_CT),
        ]

    def _hairpin_flows(self, base, proto, lb, listener, member, mac):
        """A member connecting to its own VIP and drawn for it: SNATed to
        the VIP (its kernel drops packets from its own address), in a
        zone of its own since the LB zone already DNATed the connection;
        its replies, to the VIP, are un-SNATed then un-DNATed."""
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
            # The reply: member -> VIP, back to member -> member, back to
            # VIP -> member.
            self.flow(pl.LB_VIP, 110, dict(
                base, ipv4_src=m, ipv4_dst=vip,
                **l4_match(proto, 'src', port)),
                [('ct', pl.HAIRPIN_ZONE, pl.LB_SELECT, False, 'restore')]),
            self.flow(pl.LB_SELECT, 110, dict(
                base, ipv4_src=m, ipv4_dst=m, **{pl.REG_LISTENER: 0},
                **l4_match(proto, 'src', port)),
                [('ct', pl.LB_ZONE, pl.LB_SELECT, False, 'restore')]),
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
            for port in state.ports(network.id):
                if member.address in port.ips and port.macs:
                    return port.macs[0]
            return None
        for rport in state.router_ports(network.id):
            if any(other.network_id == subnet.network_id for other in
                   state.router_interfaces(rport.router_id)):
                return rport.mac
        return None

    # --- what an NB change of a load balancer object touches -------------
    @staticmethod
    def touched_networks(state, table, obj, old):
        """The networks whose LB flows a change of one of the LB tables
        touches (None: all programmed ones, the object's load balancer is
        gone from the local view)."""
        lb_ids = set()
        for o in (obj, old):
            if o is None:
                continue
            if table == 'loadbalancer':
                lb_ids.add(o.id)
            elif table in ('listener', 'pool'):
                lb_ids.add(o.loadbalancer_id)
            else:
                pool = state.get('pool', o.pool_id)
                if pool is None:
                    return None
                lb_ids.add(pool.loadbalancer_id)
        nets = set()
        for lb_id in lb_ids:
            lb = state.get('loadbalancer', lb_id) or (
                old if table == 'loadbalancer' else None)
            if lb is None:
                return None
            nets |= lb_networks(state, lb)
        return nets


APP = LbApp
