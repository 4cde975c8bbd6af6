"""Firewall groups in the logical trace: which rule of which policy
decides a new connection through a VM port or a router interface, as the
``fwaas`` app's rules tables do (first enabled rule that matches; none:
the implicit deny; a group that is down or has no policy for the
direction filters nothing)."""
import ipaddress

from dragonflow.controller.apps import fwaas
from dragonflow.model import firewall as fwm

TABLES = ('firewall_rule', 'firewall_policy', 'firewall_group')
IMPLICIT = 'implicit deny'


def filters(view, port_id, direction):
    """(group, policy id) filtering a port's direction, or None."""
    group = fwaas.group_of(view, port_id)
    policy_id = fwaas.policies(group).get(direction)
    return (group, policy_id) if policy_id else None


def conntracked(view, port):
    """Whether the fwaas app sends the port's IP through conntrack
    (its group, or a filtered router interface on its network)."""
    return any(filters(view, p, d) for p in
               [port.id] + [r.id for r in view.router_ports(port.network_id)]
               for d in fwaas.POLICY_FIELD)


def decide(view, policy_id, headers):
    """The first enabled rule of the policy matching the packet, or
    IMPLICIT."""
    policy = view.get('firewall_policy', policy_id)
    for rule_id in policy.firewall_rules if policy else ():
        rule = view.get('firewall_rule', rule_id)
        if rule is not None and rule.enabled and matches(rule, headers):
            return rule
    return IMPLICIT


def matches(rule, h):
    if rule.ip_version != h['version']:
        return False
    proto = h['proto']
    if rule.protocol == 'icmp' and proto not in ('icmp', 'icmp6'):
        return False
    if rule.protocol in fwaas.PROTOCOLS and rule.protocol != proto:
        return False
    for end, field in (('source', 'nw_src'), ('destination', 'nw_dst')):
        address = getattr(rule, f'{end}_ip_address')
        if address and ipaddress.ip_address(h[field]) not in \
                ipaddress.ip_network(address, strict=False):
            return False
        ports = getattr(rule, f'{end}_port')
        if ports:
            low, high = fwm.port_range(ports)
            value = h.get('tp_src' if end == 'source' else 'tp_dst')
            if value is None or not low <= value <= high:
                return False
    return True


def rule_text(rule):
    parts = [rule.action, f'IPv{rule.ip_version}', rule.protocol]
    for end in ('source', 'destination'):
        address = getattr(rule, f'{end}_ip_address')
        ports = getattr(rule, f'{end}_port')
        if address or ports:
            parts.append(f'{end} {address or "any"}'
                         f'{":" + ports if ports else ""}')
    return ' '.join(parts)
