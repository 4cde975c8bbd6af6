import ipaddress

from dragonflow.model import base
from dragonflow.model import fields as f
from dragonflow.model import keyed

PROTOCOLS = {'tcp': 6, 'udp': 17, 'icmp': 1, 'icmpv6': 58, 'sctp': 132}
PORTED = ('tcp', 'udp', 'sctp')


class Protocol(f.Field):
    """A protocol name (tcp, udp, icmp, icmpv6, sctp) or number 0-255."""

    type_name = 'protocol'

    def _check(self, value, where):
        if isinstance(value, str) and value.lower() in PROTOCOLS:
            return value.lower()
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) \
                and 0 <= value <= 255:
            names = {n: k for k, n in PROTOCOLS.items()}
            return names.get(value, str(value))
        self.fail(where, f'unknown protocol (use {", ".join(PROTOCOLS)} '
                  'or 0-255)', value)


@base.register
class SecurityGroup(keyed.KeyedModel):
    """A named set of rules; ports in it accept what its rules allow."""

    table = 'security_group'
    cli_name = 'security-group'
    cli_columns = ('id', 'name', 'description')
    key_bits = 24
    # Conjunction ids carry it in 24 bits (apps/security_groups.conj_id).
    unique_key = f.Integer(min=1, max=2 ** key_bits - 1, immutable=True,
                           help='datapath key, allocated on create')

    name = f.String(help='display name')
    description = f.String(help='free text')


@base.register
class SecurityGroupRule(base.Model):
    """One allow rule of a security group (rules are immutable)."""

    table = 'security_group_rule'
    cli_name = 'security-group-rule'
    cli_columns = ('id', 'security_group_id', 'direction', 'ethertype',
                   'protocol', 'port_range_min', 'port_range_max',
                   'remote_ip_prefix', 'remote_group_id')

    security_group_id = f.Ref('security_group', required=True, immutable=True,
                              help='group the rule belongs to')
    direction = f.Enum('ingress', 'egress', required=True, immutable=True,
                       help='traffic direction as seen by the port')
    ethertype = f.Enum('IPv4', 'IPv6', default='IPv4', immutable=True,
                       help='IP version')
    protocol = Protocol(immutable=True, help='tcp, udp, icmp, ... or a number; '
                                             'any if unset')
    port_range_min = f.Integer(min=0, max=65535, immutable=True,
                               help='first port (ICMP: type)')
    port_range_max = f.Integer(min=0, max=65535, immutable=True,
                               help='last port (ICMP: code)')
    remote_ip_prefix = f.IpNetwork(strict=False, immutable=True,
                                   help='peer prefix')
    remote_group_id = f.Ref('security_group', immutable=True,
                            help='peer security group')

    def validate(self):
        low, high = self.port_range_min, self.port_range_max
        proto = self.protocol
        if (low is not None or high is not None) and proto is None:
            self.fail('protocol', 'is required with a port range')
        if proto in PORTED:
            if (low is None) != (high is None):
                self.fail('port_range_max', 'give both ends of the range')
            if low is not None and low > high:
                self.fail('port_range_min', f'{low} is above port_range_max '
                          f'{high}')
            if low == 0:
                self.fail('port_range_min', 'ports start at 1')
        elif proto in ('icmp', 'icmpv6'):
            for name, value in (('port_range_min', low),
                                ('port_range_max', high)):
                if value is not None and value > 255:
                    self.fail(name, f'ICMP type/code {value} is above 255')
        elif low is not None or high is not None:
            self.fail('port_range_min', f'protocol {proto} has no ports')
        if proto == 'icmpv6' and self.ethertype == 'IPv4':
            self.fail('protocol', 'icmpv6 needs ethertype IPv6')
        if proto == 'icmp' and self.ethertype == 'IPv6':
            self.fail('protocol', 'use icmpv6 with ethertype IPv6')
        if self.remote_ip_prefix:
            version = ipaddress.ip_network(self.remote_ip_prefix).version
            if f'IPv{version}' != self.ethertype:
                self.fail('remote_ip_prefix', f'{self.remote_ip_prefix} does '
                          f'not match ethertype {self.ethertype}')
            if self.remote_group_id:
                self.fail('remote_group_id',
                          'give remote_ip_prefix or remote_group_id, not both')
