"""Stateful security groups with conntrack (tables 10/15 egress, 105/110
ingress), the way Neutron's OVS firewall does it.

A local port with port security and at least one security group is
*protected*: its IPv4 and IPv6 packets go through conntrack in the zone of its
network (zone = network key), both when it sends (table 10, after port
security) and when a packet is delivered to it (table 105, from a local
port or a tunnel). Established and related packets pass; invalid ones
drop; a new connection passes only if a rule of one of the port's groups
allows it, and is then committed. So replies to allowed connections come
back whatever the rules of the other direction say, and removing a rule
stops new connections only. A group without rules denies everything;
give it egress rules to let its ports send (Neutron creates those with
every group). Ports without security groups are not filtered.

A port's rule flows are keyed by the port (``port_flows``): a rule
change recomputes the flows of the group's local ports and the diff
touches only the flows derived from that rule. Remote-group rules expand
to one flow per member address (members on any chassis).

Rules with ethertype IPv6 match IPv6 (icmpv6 types and codes, v6
prefixes and the v6 addresses of remote groups). Neighbour discovery and
MLD (ICMPv6 130-136, 143) never go through conntrack: IPv6 cannot work
without them, and port security already vets their sources.
"""
import ipaddress

from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl

RULE_PRIORITY = 50
EGRESS_NEXT = pl.PASS_THROUGH[pl.EGRESS_CT]
INGRESS_NEXT = pl.PASS_THROUGH[pl.INGRESS_CT]
PROTO_NUMBERS = {'tcp': 6, 'udp': 17, 'icmp': 1, 'icmpv6': 58, 'sctp': 132}
ND_AND_MLD = (130, 131, 132, 133, 134, 135, 136, 143)
VERSIONS = {'IPv4': (4, pl.ETH_IP, 'ipv4'), 'IPv6': (6, pl.ETH_IPV6, 'ipv6')}
DST_PORT_FIELD = {'tcp': 'tcp_dst', 'udp': 'udp_dst', 'sctp': 'sctp_dst'}


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


def member_addresses(state, group_id, version=4):
    """Addresses (and allowed pair prefixes) of a group's ports."""
    out = set()
    for port in state.group_ports(group_id):
        out.update(port.ips)
        out.update(p['ip_address'] for p in port.allowed_address_pairs)
    return sorted(a for a in out
                  if ipaddress.ip_network(a, strict=False).version == version)


def rule_matches(state, rule):
    """The OpenFlow matches (dicts, without the port register) a rule
    allows; [] if it allows nothing (e.g. an empty remote group)."""
    version, eth_type, prefix = VERSIONS[rule.ethertype]
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
    remote_field = f'{prefix}_dst' if rule.direction == 'egress' else \
        f'{prefix}_src'
    if rule.remote_group_id:
        remotes = [_prefix(a) for a in
                   member_addresses(state, rule.remote_group_id, version)]
        if not remotes:
            return []
    elif rule.remote_ip_prefix:
        remotes = [_prefix(rule.remote_ip_prefix)]
    else:
        remotes = [None]
    out = []
    for variant in variants:
        for remote in remotes:
            out.append(variant if remote is None else
                       dict(variant, **{remote_field: remote}))
    return out


def is_protected(port):
    return bool(port.port_security_enabled and port.security_groups)


class SecurityGroupsApp(apps.App):
    name = 'security_groups'
    cookie = 8

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
        for kind in ND_AND_MLD:
            match = {'eth_type': pl.ETH_IPV6, 'ip_proto': pl.ICMPV6,
                     'icmpv6_type': kind}
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
        if network is None or not is_protected(port):
            return []
        zone = network.unique_key
        key = port.unique_key
        out = []
        for eth_type in (pl.ETH_IP, pl.ETH_IPV6):
            out += [
                self.flow(pl.EGRESS_CT, 100,
                          {pl.REG_SRC: key, 'eth_type': eth_type},
                          [('ct', zone, pl.EGRESS_SG, False)]),
                self.flow(pl.INGRESS_CT, 100,
                          {pl.REG_DST: key, 'eth_type': eth_type},
                          [('ct', zone, pl.INGRESS_SG, False)]),
            ]
        commit = [('ct', zone, None, True)]
        for group_id in port.security_groups:
            for rule in state.group_rules(group_id):
                if rule.direction == 'egress':
                    table, reg, nxt = pl.EGRESS_SG, pl.REG_SRC, EGRESS_NEXT
                else:
                    table, reg, nxt = pl.INGRESS_SG, pl.REG_DST, \
                        INGRESS_NEXT
                for match in rule_matches(state, rule):
                    out.append(self.flow(
                        table, RULE_PRIORITY,
                        dict(match, ct_state=pl.CT_STATE_NEW, **{reg: key}),
                        commit, goto=nxt))
        return out


APP = SecurityGroupsApp
