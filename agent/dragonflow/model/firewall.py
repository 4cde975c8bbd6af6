"""Firewall as a service on the wire (neutron-fwaas v2 names and meanings):
rules, ordered policies of rules, and firewall groups applying an ingress
and an egress policy to VM ports and router interface ports.

Ingress and egress are seen from what the port leads to, as neutron-fwaas
has them: ingress is what enters the VM, or what a router interface lets
into the subnet behind it (routed out of the router through it); egress
is what the VM sends, or what that subnet sends into the router through
the interface (to other subnets, and through SNAT or a floating IP to
external hosts). Rules are evaluated in the
policy's order, the first match wins, and a direction with a policy drops
what no rule allows (implicit deny); a direction without a policy is not
filtered by the group. The dataplane is the ``fwaas`` controller app;
a group's ``unique_key`` is its key in the pipeline (``reg8``).
"""
import ipaddress

from dragonflow.model import base
from dragonflow.model import fields as f
from dragonflow.model import keyed

PORT_RANGE = r'^\d{1,5}(:\d{1,5})?$'
PORTED = ('tcp', 'udp')
ROUTER_TABLE = 'logical_router_port'


def port_range(text):
    """(low, high) of ``N`` or ``a:b``."""
    low, _, high = text.partition(':')
    return int(low), int(high or low)


@base.register
class FirewallRule(base.Model):
    """One match and what to do with it (allow, deny or reject)."""

    table = 'firewall_rule'
    cli_name = 'firewall-rule'
    cli_columns = ('id', 'name', 'protocol', 'source_ip_address',
                   'destination_ip_address', 'destination_port', 'action',
                   'enabled')

    name = f.String(help='display name')
    description = f.String(help='free text')
    protocol = f.Enum('tcp', 'udp', 'icmp', 'any', default='any',
                      help='tcp, udp, icmp or any')
    ip_version = f.Integer(min=4, max=6, default=4, help='4 or 6')
    source_ip_address = f.IpAddressOrNetwork(help='source address or CIDR')
    destination_ip_address = f.IpAddressOrNetwork(
        help='destination address or CIDR')
    source_port = f.String(pattern=PORT_RANGE, help='N or a:b (tcp, udp)')
    destination_port = f.String(pattern=PORT_RANGE,
                                help='N or a:b (tcp, udp)')
    action = f.Enum('allow', 'deny', 'reject', default='deny',
                    help='allow, deny or reject (TCP RST, ICMP '
                    'unreachable)')
    enabled = f.Boolean(default=True, help='false: the rule is skipped')
    shared = f.Boolean(default=False, help='usable by every project')

    def validate(self):
        if self.ip_version not in (4, 6):
            self.fail('ip_version', f'{self.ip_version}: 4 or 6')
        for name in ('source_port', 'destination_port'):
            value = getattr(self, name)
            if value is None:
                continue
            if self.protocol not in PORTED:
                self.fail(name, f'protocol {self.protocol} has no ports '
                          '(tcp or udp only)')
            low, high = port_range(value)
            if not 1 <= low <= 65535 or not 1 <= high <= 65535:
                self.fail(name, f'{value}: ports are 1-65535')
            if low > high:
                self.fail(name, f'{value}: the range is reversed')
        for name in ('source_ip_address', 'destination_ip_address'):
            value = getattr(self, name)
            if value is None:
                continue
            version = ipaddress.ip_network(value, strict=False).version
            if version != self.ip_version:
                self.fail(name, f'{value} is IPv{version}, the rule '
                          f'IPv{self.ip_version}')


@base.register
class FirewallPolicy(base.Model):
    """Rules in order: the first that matches decides."""

    table = 'firewall_policy'
    cli_name = 'firewall-policy'
    cli_columns = ('id', 'name', 'firewall_rules', 'audited')

    name = f.String(help='display name')
    description = f.String(help='free text')
    firewall_rules = f.List(f.Ref('firewall_rule'),
                            help='rule ids, in order')
    audited = f.Boolean(default=False,
                        help='reviewed; set false again by any rule change')
    shared = f.Boolean(default=False, help='usable by every project')

    def check_in_store(self, view, old):
        had = set(old.firewall_rules) if old is not None else set()
        for i, rule_id in enumerate(self.firewall_rules):
            if rule_id in had:
                continue        # checked when it was added
            rule = view.get('firewall_rule', rule_id)
            if rule is not None and rule.topic and rule.topic != \
                    (self.topic or '') and not rule.shared:
                self.fail(f'firewall_rules[{i}]', f'rule {rule_id} belongs '
                          'to another project and is not shared')
        if old is not None and old.audited and self.audited and \
                old.firewall_rules != self.firewall_rules:
            # neutron-fwaas: changing the rules of an audited policy
            # clears the flag; an explicit audited=true with it is a
            # contradiction.
            self.audited = False


@base.register
class FirewallGroup(keyed.KeyedModel):
    """An ingress and an egress policy applied to ports (VM ports and
    router interface ports)."""

    table = 'firewall_group'
    cli_name = 'firewall-group'
    cli_columns = ('id', 'name', 'ports', 'ingress_firewall_policy_id',
                   'egress_firewall_policy_id', 'admin_state_up', 'status')

    name = f.String(help='display name')
    description = f.String(help='free text')
    ports = f.List(f.Id(), help='VM port and router interface ids')
    ingress_firewall_policy_id = f.Ref(
        'firewall_policy', help='policy of what enters the ports')
    egress_firewall_policy_id = f.Ref(
        'firewall_policy', help='policy of what leaves the ports')
    admin_state_up = f.Boolean(default=True,
                               help='false: the group filters nothing')
    status = f.Enum('ACTIVE', 'INACTIVE', 'DOWN', 'PENDING_CREATE',
                    'PENDING_UPDATE', 'ERROR', default='INACTIVE',
                    help='ACTIVE once applied to a port')
    shared = f.Boolean(default=False, help='usable by every project')
    log = f.Enum('accept', 'drop', 'all',
                 help='packet logging: accept, drop or all')

    def prepare(self, view):
        super().prepare(view)
        self.status = 'ACTIVE' if self.ports and self.admin_state_up \
            else 'INACTIVE'

    def check_in_store(self, view, old):
        for i, port_id in enumerate(self.ports):
            port = view.get('logical_port', port_id) or \
                view.get(ROUTER_TABLE, port_id)
            if port is None:
                self.fail(f'ports[{i}]', f'{port_id} is neither a port nor '
                          'a router interface')
            if port.topic and port.topic != (self.topic or ''):
                self.fail(f'ports[{i}]', f'port {port_id} belongs to '
                          f'another project ({port.topic!r})')
        for name in ('ingress_firewall_policy_id',
                     'egress_firewall_policy_id'):
            policy_id = getattr(self, name)
            policy = view.get('firewall_policy', policy_id) \
                if policy_id else None
            if policy is not None and policy.topic and not policy.shared \
                    and policy.topic != (self.topic or ''):
                self.fail(name, f'policy {policy_id} belongs to another '
                          'project and is not shared')

    def unique_keys(self):
        # A port is in one firewall group at most (neutron-fwaas).
        return list(super().unique_keys()) + [
            ('firewall_port', port_id) for port_id in self.ports]
