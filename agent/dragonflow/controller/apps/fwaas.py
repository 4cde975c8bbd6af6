"""Firewall groups on the wire (neutron-fwaas v2): ordered, stateful
policies on VM ports and router interfaces, reject, and packet logging
(tables 11-14 egress, 106-109 ingress).

**Where.** A VM port's policies apply on its own chassis, like its
security groups. A router interface's policies apply to traffic routed
through it, on the chassis of the endpoint on the interface's subnet:
its egress policy (what the subnet sends into the router) where the
sender's packet is routed (the sender's chassis, which also does its
SNAT and floating IP), its ingress policy (what is routed into the
subnet) where the packet is delivered. Both directions of a connection
through an interface are so seen by one chassis, whichever side routes
the reply, and the filtering is stateful for routers too.

**Conntrack.** No second conntrack pass: the firewall stages sit between
the security groups' conntrack lookup (table 10 / 105, zone = network
key) and their rule stage (15 / 110), which commits. A new connection is
committed only when the firewall has let it through *and* a security
group rule allows it (deny wins); established and related packets pass
both. A port without security groups under a firewall (its own group, or
a filtered router interface on its network) gets the same conntrack
lookup from this app, and its new connections the firewall allowed are
committed in 15 / 110.

**Rules.** A port's (or an interface's) new connection gets its group's
key in ``reg8``; a rules table holds each group's policy for that hook as
one flow per rule match (port ranges as masks), keyed by the group and
direction, so flows grow as rules x groups, not x ports. Priorities
follow the policy order with gaps (``Priorities``): inserting a rule adds
its own flows and changes no other. The lowest flow of a group is the
implicit deny. Disabled rules have no flow; a group with
``admin_state_up`` false filters nothing.

**Reject and logging** go to the controller with the rule's position and
the verdict in ``reg9``: a rejected TCP packet is answered with a RST,
anything else with ICMP (port unreachable for UDP, administratively
prohibited otherwise; ICMPv6 likewise), as if from its destination, at
most ``RATE`` per second. With ``log`` on the group, accepted first
packets (a copy: the packet goes on) and dropped packets become one log
line each (``firewall ...`` with group, rule, action, 5-tuple, port),
at most ``LOG_RATE`` per second, the rest counted as suppressed.
"""
import bisect
import logging

from dragonflow import logs
from dragonflow import metrics
from dragonflow.controller import apps
from dragonflow.controller import packets
from dragonflow.controller import pipeline as pl
from dragonflow.controller import state as state_mod
from dragonflow.controller.apps import router_icmp
from dragonflow.controller.apps import security_groups as sg
from dragonflow.model import firewall as fwm

LOG = logging.getLogger(__name__)
FW_TABLES = state_mod.FW_TABLES
RATE = 20.0             # rejections answered per second (and burst)
LOG_RATE = 100.0        # log lines per second (and burst)
TOP, BOTTOM = 60000, 100    # rule priorities lie between
IMPLICIT_DENY = 1
CLASSIFY = 100
# reg9: rule position (1-based, 0: implicit deny) << 2 | verdict
ACCEPT, DROP, REJECT = 1, 2, 3
VERDICTS = {ACCEPT: 'ACCEPT', DROP: 'DROP', REJECT: 'REJECT'}
PROTOCOLS = {'tcp': 6, 'udp': 17}
# (direction, hook) -> (rules table, where allowed packets go on)
HOOKS = {
    ('egress', 'port'): (pl.FW_EGRESS_RULES, pl.FW_EGRESS_ROUTER),
    ('egress', 'router'): (pl.FW_EGRESS_ROUTER_RULES, pl.EGRESS_SG),
    ('ingress', 'router'): (pl.FW_INGRESS_ROUTER_RULES, pl.FW_INGRESS),
    ('ingress', 'port'): (pl.FW_INGRESS_RULES, pl.INGRESS_SG),
}
BY_TABLE = {table: hook for hook, (table, _) in HOOKS.items()}
POLICY_FIELD = {'ingress': 'ingress_firewall_policy_id',
                'egress': 'egress_firewall_policy_id'}


def policies(group):
    """{direction: policy id} a group filters with (none when down)."""
    if group is None or not group.admin_state_up:
        return {}
    return {d: getattr(group, f) for d, f in POLICY_FIELD.items()
            if getattr(group, f)}


def rule_matches(rule):
    """The OpenFlow matches (dicts) of a firewall rule, without the group
    register."""
    v6 = rule.ip_version == 6
    base = {'eth_type': pl.ETH_IPV6 if v6 else pl.ETH_IP}
    if rule.protocol == 'icmp':
        base['ip_proto'] = pl.ICMPV6 if v6 else 1
    elif rule.protocol in PROTOCOLS:
        base['ip_proto'] = PROTOCOLS[rule.protocol]
    prefix = 'ipv6' if v6 else 'ipv4'
    for end in ('source', 'destination'):
        address = getattr(rule, f'{end}_ip_address')
        cidr = sg._prefix(address) if address else None
        if cidr is not None:
            base[f'{prefix}_{"src" if end == "source" else "dst"}'] = cidr
    variants = [base]
    for end, field in (('source', 'src'), ('destination', 'dst')):
        text = getattr(rule, f'{end}_port')
        if not text or rule.protocol not in PROTOCOLS:
            continue
        low, high = fwm.port_range(text)
        name = f'{rule.protocol}_{field}'
        variants = [dict(v, **{name: m}) for v in variants
                    for m in sg.port_masks(low, high)]
    return variants


def _decreasing_run(values):
    """Indexes of a longest strictly decreasing subsequence of the known
    (not None) values."""
    tails, tail_at, back = [], [], {}
    for i, value in enumerate(values):
        if value is None:
            continue
        k = bisect.bisect_left(tails, -value)
        if k == len(tails):
            tails.append(-value)
            tail_at.append(i)
        else:
            tails[k] = -value
            tail_at[k] = i
        back[i] = tail_at[k - 1] if k else None
    out, i = [], tail_at[-1] if tail_at else None
    while i is not None:
        out.append(i)
        i = back[i]
    return set(out)


def assign(rule_ids, old):
    """{rule id: priority}, decreasing in list order, between TOP and
    BOTTOM, keeping as many of the old priorities as the order allows:
    new rules get the middle of the gap they land in; only when a gap is
    full is the whole policy spread again."""
    known = [old.get(r) for r in rule_ids]
    keep = _decreasing_run(known)
    out = {}
    upper, run = TOP + 1, []
    for i, rule_id in enumerate(rule_ids + [None]):
        if i < len(rule_ids) and i not in keep:
            run.append(rule_id)
            continue
        lower = known[i] if i < len(rule_ids) else BOTTOM - 1
        if run:
            step = (upper - lower) // (len(run) + 1)
            if step < 1:
                return _spread(rule_ids)
            for j, rid in enumerate(run):
                out[rid] = upper - step * (j + 1)
            run = []
        if i < len(rule_ids):
            out[rule_id] = upper = lower
    return out


def _spread(rule_ids):
    step = max(1, (TOP - BOTTOM) // (len(rule_ids) + 1))
    return {r: max(BOTTOM, TOP - step * i) for i, r in enumerate(rule_ids)}


class Priorities:
    """Per policy, the priorities of its rules' flows, kept from one rule
    list to the next so that an insert or removal changes no other rule's
    flows. (Per agent: another chassis may number differently.)"""

    def __init__(self):
        self._plans = {}        # policy id -> (rule ids, {id: priority})

    def of(self, policy):
        rule_ids = list(dict.fromkeys(policy.firewall_rules))
        plan = self._plans.get(policy.id)
        if plan is None or plan[0] != rule_ids:
            plan = self._plans[policy.id] = (
                rule_ids, assign(rule_ids, plan[1] if plan else {}))
        return plan[1]

    def forget(self, policy_id):
        self._plans.pop(policy_id, None)


class FwaasApp(apps.App):
    name = 'fwaas'
    cookie = 18
    packet_ins = {table: 'verdict' for table in BY_TABLE}

    def __init__(self, controller=None):
        super().__init__(controller)
        self.priorities = Priorities()
        # rule_matches once per rule version: every group using the
        # policy, in both directions, shares them
        self._rule_matches = sg.MatchCache(rule_matches).get
        self.reject_bucket = router_icmp.TokenBucket(RATE)
        self.log_bucket = router_icmp.TokenBucket(LOG_RATE)
        self.suppressed = 0

    def global_flows(self, state):
        out = [
            self.flow(pl.FW_EGRESS, 0, goto=pl.FW_EGRESS_ROUTER),
            self.flow(pl.FW_EGRESS_ROUTER, 0, goto=pl.EGRESS_SG),
            self.flow(pl.FW_INGRESS_ROUTER, 0, goto=pl.FW_INGRESS),
            self.flow(pl.FW_INGRESS, 0, goto=pl.INGRESS_SG),
        ]
        for table, nxt in ((pl.FW_EGRESS, pl.EGRESS_SG),
                           (pl.FW_INGRESS_ROUTER, pl.INGRESS_SG)):
            for ct_state in (pl.CT_STATE_EST, pl.CT_STATE_REL):
                out.append(self.flow(table, 200, {'ct_state': ct_state},
                                     goto=nxt))
        for table, _ in HOOKS.values():
            out.append(self.flow(table, 0))
        return out

    # --- what is programmed here -----------------------------------------
    def keys(self, state):
        # Called on every change: kept until a firewall object or a local
        # port comes or goes (state.LOCALITY, state.PLUGGED).
        return state.derived('fw_keys', lambda: frozenset(
            self._keys(state)))

    def _keys(self, state):
        local = state.local_port_ids()
        local_nets = set(state.local_networks())
        out, filtered_nets = set(), set()
        for group in state.objects['firewall_group'].values():
            directions = policies(group)
            if not directions:
                continue
            hooks = set()
            for port_id in group.ports:
                if port_id in local and \
                        state.get('logical_port', port_id) is not None:
                    out.add(self.key('port', port_id))
                    hooks.add('port')
                rport = state.get(fwm.ROUTER_TABLE, port_id)
                if rport is not None and rport.network_id in local_nets:
                    out.add(self.key('interface', port_id))
                    hooks.add('router')
                    filtered_nets.add(rport.network_id)
            out |= {self.key('rules', (group.id, d, h))
                    for d in directions for h in hooks}
        for net_id in filtered_nets:
            out |= {self.key('port', p.id) for p in state.local_ports(net_id)}
        return out

    def touched_keys(self, state, table, obj, old):
        objs = [o for o in (obj, old) if o is not None]
        out = set()
        if table == 'firewall_group':
            for group in objs:
                out |= self._group_keys(state, group)
        elif table == 'firewall_policy':
            ids = {p.id for p in objs}
            if obj is None:
                self.priorities.forget(old.id)
            for group in state.objects['firewall_group'].values():
                if ids & {group.ingress_firewall_policy_id,
                          group.egress_firewall_policy_id}:
                    out |= self._rules_keys(group)
        elif table == 'firewall_rule':
            ids = {r.id for r in objs}
            using = {p.id for p in state.objects['firewall_policy'].values()
                     if ids & set(p.firewall_rules)}
            for group in state.objects['firewall_group'].values():
                if using & {group.ingress_firewall_policy_id,
                            group.egress_firewall_policy_id}:
                    out |= self._rules_keys(group)
        elif table == 'logical_port':
            for port in objs:
                out.add(self.key('port', port.id))
                if obj is old:      # came or went: its network's locality
                    out |= {self.key('interface', r.id)
                            for r in state.router_ports(port.network_id)}
        elif table == fwm.ROUTER_TABLE:
            out |= {self.key('interface', r.id) for r in objs}
        return out

    def _rules_keys(self, group):
        return {self.key('rules', (group.id, d, h))
                for d, h in HOOKS}

    def _group_keys(self, state, group):
        out = self._rules_keys(group)
        for port_id in group.ports:
            out.add(self.key('port', port_id))
            rport = state.get(fwm.ROUTER_TABLE, port_id)
            if rport is not None:
                out.add(self.key('interface', port_id))
                out |= {self.key('port', p.id)
                        for p in state.local_ports(rport.network_id)}
        return out

    def key_flows(self, state, key):
        _, kind, key_id = key
        if kind == 'port':
            return self._port_flows(state, key_id)
        if kind == 'interface':
            return self._interface_flows(state, key_id)
        return self._rules_flows(state, *key_id)

    # --- flows -----------------------------------------------------------
    def _port_flows(self, state, port_id):
        port = state.get('logical_port', port_id)
        network = state.network(port.network_id) if port else None
        if network is None or not state.is_local(port):
            return []
        group = group_of(state, port_id)
        directions = policies(group)
        out = []
        if not port.is_protected() and (directions or any(
                policies(group_of(state, r.id))
                for r in state.router_ports(port.network_id))):
            out += self._conntrack(port, network.unique_key)
        key = port.unique_key
        new = {'ct_state': pl.CT_STATE_NEW}
        if 'egress' in directions:
            out.append(self.flow(
                pl.FW_EGRESS, CLASSIFY, dict(new, **{pl.REG_SRC: key}),
                [('set_field', pl.REG_FW_GROUP, group.unique_key)],
                goto=pl.FW_EGRESS_RULES))
        if 'ingress' in directions:
            out.append(self.flow(
                pl.FW_INGRESS, CLASSIFY, dict(new, **{pl.REG_DST: key}),
                [('set_field', pl.REG_FW_GROUP, group.unique_key)],
                goto=pl.FW_INGRESS_RULES))
        return out

    def _conntrack(self, port, zone):
        """A port without security groups under a firewall: conntrack
        like a protected port's, and a commit of what the firewall let
        through."""
        key = port.unique_key
        out = sg.conntrack_flows(self, key, zone)
        commit = [('ct', zone, None, True)]
        for eth_type in (pl.ETH_IP, pl.ETH_IPV6):
            new = {'ct_state': pl.CT_STATE_NEW, 'eth_type': eth_type}
            out += [
                self.flow(pl.EGRESS_SG, sg.RULE_PRIORITY,
                          dict(new, **{pl.REG_SRC: key}), commit,
                          goto=sg.EGRESS_NEXT),
                self.flow(pl.INGRESS_SG, sg.RULE_PRIORITY,
                          dict(new, **{pl.REG_DST: key}), commit,
                          goto=sg.INGRESS_NEXT),
            ]
        return out

    def _interface_flows(self, state, rport_id):
        rport = state.get(fwm.ROUTER_TABLE, rport_id)
        network = state.network(rport.network_id) if rport else None
        group = group_of(state, rport_id)
        directions = policies(group)
        if network is None or not directions:
            return []
        out = []
        base = {'ct_state': pl.CT_STATE_NEW, 'metadata': network.unique_key}
        mark = [('set_field', pl.REG_FW_GROUP, group.unique_key)]
        if 'egress' in directions:
            out.append(self.flow(pl.FW_EGRESS_ROUTER, CLASSIFY,
                                 dict(base, eth_dst=rport.mac), mark,
                                 goto=pl.FW_EGRESS_ROUTER_RULES))
        if 'ingress' in directions:
            out.append(self.flow(pl.FW_INGRESS_ROUTER, CLASSIFY,
                                 dict(base, eth_src=rport.mac), mark,
                                 goto=pl.FW_INGRESS_ROUTER_RULES))
        return out

    def _rules_flows(self, state, group_id, direction, hook):
        group = state.get('firewall_group', group_id)
        policy_id = policies(group).get(direction)
        if policy_id is None:
            return []
        table, nxt = HOOKS[(direction, hook)]
        mine = {pl.REG_FW_GROUP: group.unique_key}
        log_accept = group.log in ('accept', 'all')
        log_drop = group.log in ('drop', 'all')
        out = [self.flow(table, IMPLICIT_DENY, mine,
                         _to_controller(0, DROP) if log_drop else [])]
        policy = state.get('firewall_policy', policy_id)
        if policy is None:
            return out          # not here yet: deny, like an empty policy
        priorities = self.priorities.of(policy)
        for position, rule_id in enumerate(policy.firewall_rules, 1):
            rule = state.get('firewall_rule', rule_id)
            if rule is None or not rule.enabled or \
                    priorities.get(rule_id) is None:
                continue
            goto = None
            if rule.action == 'allow':
                goto = nxt
                actions = _to_controller(position, ACCEPT) \
                    if log_accept else []
            elif rule.action == 'reject':
                actions = _to_controller(position, REJECT)
            else:
                actions = _to_controller(position, DROP) if log_drop else []
            for match in self._rule_matches(rule):
                out.append(self.flow(table, priorities[rule_id],
                                     dict(match, **mine), actions,
                                     goto=goto))
        return out

    # --- packet-ins: rejections and log lines ----------------------------
    def verdict(self, state, msg, send_packet):
        direction, hook = BY_TABLE[msg.table_id]
        match = msg.match
        group = group_by_key(state, match.get(pl.REG_FW_GROUP))
        if group is None:
            return
        code = match.get(pl.REG_FW_VERDICT, 0)
        position, verdict = code >> 2, code & 3
        rule = None
        policy = state.get('firewall_policy', policies(group).get(direction))
        if position and policy is not None and \
                position <= len(policy.firewall_rules):
            rule = state.get('firewall_rule',
                             policy.firewall_rules[position - 1])
        port = _port_of(state, msg, group, direction, hook)
        log = group.log
        if log == 'all' or (log == 'accept' and verdict == ACCEPT) or \
                (log == 'drop' and verdict in (DROP, REJECT)):
            self._log(msg, group, rule, verdict, direction, port)
        if verdict == REJECT:
            self._reject(state, msg, direction, hook, port, send_packet)

    def _log(self, msg, group, rule, verdict, direction, port):
        if not self.log_bucket.take():
            self.suppressed += 1
            metrics.PACKET_INS_DROPPED.labels(self.name, 'rate_limit').inc()
            return
        flow = five_tuple(msg.data)
        if flow is None:
            return
        proto, src, sport, dst, dport = flow
        action = rule.action if rule is not None else 'deny'
        LOG.info('firewall %s group=%s rule=%s action=%s %s %s%s > %s%s '
                 'direction=%s', VERDICTS[verdict], group.id,
                 rule.id if rule is not None else '(default deny)', action,
                 proto, src, f':{sport}' if sport is not None else '', dst,
                 f':{dport}' if dport is not None else '', direction,
                 extra=logs.fields(port=port.id if port is not None
                                   else None))

    def _reject(self, state, msg, direction, hook, port, send_packet):
        answer = rejection(msg.data)
        if answer is None:
            return
        if not self.reject_bucket.take():
            self.suppressed += 1
            metrics.PACKET_INS_DROPPED.labels(self.name, 'rate_limit').inc()
            return
        match = msg.match
        if direction == 'egress':
            sender = state.port_from_packet_in(msg)
            if sender is not None:
                state.send_to(sender, answer, send_packet)
            return
        # Ingress: the sender is elsewhere; the answer leaves as if the
        # destination port sent it, past its own (egress) filtering: into
        # L2 lookup, which routes or tunnels it like any packet.
        fields = {'metadata': match.get('metadata', 0),
                  pl.REG_SRC: match.get(pl.REG_DST, 0)}
        send_packet(None, answer, table=pl.L2_LOOKUP, fields=fields)


def group_of(state, port_id):
    """The firewall group a port or router interface is in (or None)."""
    index = state.derived('fw_port_groups', lambda: {
        p: g for g in state.objects['firewall_group'].values()
        for p in g.ports})
    return index.get(port_id)


def group_by_key(state, key):
    if not key:
        return None
    return next((g for g in state.objects['firewall_group'].values()
                 if g.unique_key == key), None)


def _port_of(state, msg, group, direction, hook):
    """The port or router interface whose policy decided."""
    if hook == 'router':
        net_key = msg.match.get('metadata')
        for port_id in group.ports:
            rport = state.get(fwm.ROUTER_TABLE, port_id)
            net = state.network(rport.network_id) if rport else None
            if net is not None and net.unique_key == net_key:
                return rport
        return None
    if direction == 'egress':
        return state.port_from_packet_in(msg)
    key = msg.match.get(pl.REG_DST)
    for port_id in group.ports:
        port = state.get('logical_port', port_id)
        if port is not None and port.unique_key == key:
            return port
    return None


def _to_controller(position, verdict):
    return [('set_field', pl.REG_FW_VERDICT, position << 2 | verdict),
            ('controller',)]


def _parse(data):
    from os_ken.lib.packet import ethernet, ipv4, ipv6, packet
    pkt = packet.Packet(data)
    eth = pkt.get_protocol(ethernet.ethernet)
    ip = pkt.get_protocol(ipv4.ipv4) or pkt.get_protocol(ipv6.ipv6)
    return pkt, eth, ip


def five_tuple(data):
    """(protocol, src, src port, dst, dst port) of a frame, ports None
    when the protocol has none; None if not IP."""
    from os_ken.lib.packet import tcp, udp
    pkt, _, ip = _parse(data)
    if ip is None:
        return None
    for proto in (tcp.tcp, udp.udp):
        l4 = pkt.get_protocol(proto)
        if l4 is not None:
            return proto.__name__, ip.src, l4.src_port, ip.dst, l4.dst_port
    number = getattr(ip, 'proto', None)
    if number is None:
        number = ip.nxt
    name = {1: 'icmp', 58: 'icmpv6'}.get(number, f'proto-{number}')
    return name, ip.src, None, ip.dst, None


def rejection(data):
    """The answer to a rejected frame, as if from its destination: a TCP
    RST, else ICMP port unreachable (UDP) or administratively prohibited;
    None for what must not be answered (a RST, an ICMP error)."""
    from os_ken.lib.packet import icmp, icmpv6, ipv4, tcp, udp
    pkt, eth, ip = _parse(data)
    if eth is None or ip is None:
        return None
    v6 = not isinstance(ip, ipv4.ipv4)
    seg = pkt.get_protocol(tcp.tcp)
    if seg is not None:
        if seg.bits & tcp.TCP_RST:
            return None
        if seg.bits & tcp.TCP_ACK:
            reply = tcp.tcp(src_port=seg.dst_port, dst_port=seg.src_port,
                            seq=seg.ack, bits=tcp.TCP_RST)
        else:
            length = _payload_length(ip, v6) - seg.offset * 4 + \
                bool(seg.bits & tcp.TCP_SYN) + bool(seg.bits & tcp.TCP_FIN)
            reply = tcp.tcp(src_port=seg.dst_port, dst_port=seg.src_port,
                            ack=(seg.seq + length) & 0xffffffff,
                            bits=tcp.TCP_RST | tcp.TCP_ACK)
        if v6:
            return packets.frame(eth.dst, eth.src, _ipv6(ip.dst, ip.src, 6),
                                 reply)
        return packets.ipv4_frame(eth.dst, eth.src, ip.dst, ip.src, 6, reply)
    is_udp = pkt.get_protocol(udp.udp) is not None
    if v6:
        if pkt.get_protocol(icmpv6.icmpv6) is not None and \
                pkt.get_protocol(icmpv6.icmpv6).type_ < 128:
            return None
        original = bytes(data[14:14 + 1232])
        message = icmpv6.icmpv6(type_=icmpv6.ICMPV6_DST_UNREACH,
                                code=4 if is_udp else 1,
                                data=bytes(4) + original)
        return packets.frame(eth.dst, eth.src, _ipv6(ip.dst, ip.src, 58),
                             message)
    if ip.proto == 1 and router_icmp._is_icmp_error(pkt):
        return None
    header = (data[14] & 0x0f) * 4
    message = icmp.icmp(type_=3, code=3 if is_udp else 13,
                        data=icmp.dest_unreach(
                            data=bytes(data[14:14 + header + 8])))
    return packets.ipv4_frame(eth.dst, eth.src, ip.dst, ip.src, 1, message)


def _ipv6(src, dst, nxt):
    from os_ken.lib.packet import ipv6
    return ipv6.ipv6(src=src, dst=dst, nxt=nxt, hop_limit=64)


def _payload_length(ip, v6):
    if v6:
        return ip.payload_length
    return ip.total_length - ip.header_length * 4


APP = FwaasApp
