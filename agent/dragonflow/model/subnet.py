import ipaddress

from dragonflow.model import base
from dragonflow.model import fields as f


class HostRoute(base.Struct):
    destination = f.IpNetwork(required=True, help='destination CIDR')
    nexthop = f.IpAddress(required=True, help='next hop address')


@base.register
class Subnet(base.Model):
    """An IPv4 or IPv6 prefix on a network."""

    table = 'subnet'
    cli_name = 'subnet'
    cli_columns = ('id', 'name', 'network_id', 'cidr', 'gateway_ip',
                   'enable_dhcp')
    feed_with = 'network_id'

    name = f.String(help='display name')
    network_id = f.Ref('logical_switch', required=True, immutable=True,
                       help='network the subnet is on')
    cidr = f.IpNetwork(required=True, immutable=True, help='prefix, e.g. 10.0.0.0/24')
    gateway_ip = f.IpAddress(help='router address; defaults to the first host')
    enable_dhcp = f.Boolean(default=True, help='answer DHCP for ports here')
    dns_nameservers = f.List(f.IpAddress(), help='DNS servers given by DHCP')
    host_routes = f.List(f.Nested(HostRoute),
                         help='routes given by DHCP: destination=CIDR,nexthop=IP;...')
    ipv6_ra_mode = f.Enum('slaac', 'dhcpv6-stateful', 'dhcpv6-stateless',
                          help='IPv6 router advertisement mode')
    ipv6_address_mode = f.Enum('slaac', 'dhcpv6-stateful', 'dhcpv6-stateless',
                               help='IPv6 address configuration mode')

    @property
    def network(self):
        return ipaddress.ip_network(self.cidr)

    def prepare(self, view):
        if self.gateway_ip is None and self.version is None:
            self.gateway_ip = str(next(self.network.hosts(), None)
                                  or self.network.network_address)

    def contains(self, address):
        return ipaddress.ip_address(address) in self.network

    def validate(self):
        net = self.network
        if self.gateway_ip is not None:
            gw = ipaddress.ip_address(self.gateway_ip)
            if gw not in net:
                self.fail('gateway_ip', f'{gw} is not in {net}')
            if net.version == 4 and net.prefixlen < 31 and gw in (
                    net.network_address, net.broadcast_address):
                self.fail('gateway_ip', f'{gw} is the network or broadcast '
                          f'address of {net}')
        for i, route in enumerate(self.host_routes):
            if ipaddress.ip_address(route['nexthop']).version != net.version:
                self.fail(f'host_routes[{i}].nexthop',
                          f'must be IPv{net.version} like the subnet')
        if net.version == 4 and (self.ipv6_ra_mode or self.ipv6_address_mode):
            self.fail('ipv6_ra_mode', 'is only valid on IPv6 subnets')
        if self.ipv6_address_mode in ('slaac', 'dhcpv6-stateless') and \
                net.prefixlen != 64:
            self.fail('cidr', f'{net} is a /{net.prefixlen}; '
                      f'{self.ipv6_address_mode} needs a /64 (EUI-64 '
                      'interface identifiers)')
        if self.ipv6_ra_mode and self.ipv6_address_mode and \
                self.ipv6_ra_mode != self.ipv6_address_mode:
            self.fail('ipv6_address_mode', f'{self.ipv6_address_mode} '
                      f'differs from ipv6_ra_mode {self.ipv6_ra_mode}')

    def check_in_store(self, view, old):
        for other in view.referrers('logical_switch', self.network_id, 'subnet'):
            if other.id != self.id and other.network.overlaps(self.network):
                self.fail('cidr', f'{self.cidr} overlaps subnet {other.id} '
                          f'({other.cidr}) on network {self.network_id}')

    def guards(self):
        # Overlap is checked against the network's other subnets: serialise
        # subnet writes per network so two overlapping creates cannot race.
        return [('logical_switch', self.network_id)]
