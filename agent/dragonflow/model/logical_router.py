import ipaddress

from dragonflow.model import base
from dragonflow.model import fields as f
from dragonflow.model import keyed
from dragonflow.model import logical_port


class Route(base.Struct):
    destination = f.IpNetwork(required=True, help='destination CIDR')
    nexthop = f.IpAddress(required=True, help='next hop address')


class Gateway(base.Struct):
    network_id = f.Ref('logical_switch', required=True,
                       help='external network')
    ip = f.IpAddress(help='router address on it; allocated if unset')


def external_subnets(view, model, field, network_id):
    network = view.get('logical_switch', network_id)
    if network is None:
        model.fail(field, f'network {network_id} does not exist')
    if not network.external:
        model.fail(field, f'network {network_id} is not external')
    return view.referrers('logical_switch', network_id, 'subnet')


@base.register
class LogicalRouter(keyed.KeyedModel):
    """A distributed router; its interfaces are LogicalRouterPort objects."""

    table = 'logical_router'
    cli_name = 'router'
    cli_columns = ('id', 'name', 'routes', 'external_gateway')
    key_bits = 24

    name = f.String(help='display name')
    routes = f.List(f.Nested(Route),
                    help='extra routes: destination=CIDR,nexthop=IP;...')
    external_gateway = f.Nested(
        Gateway, help='external network: network_id=ID[,ip=IP]')
    enabled = f.Boolean(default=True, help='administrative state')
    multicast_relay = f.Boolean(
        default=False, help='forward a multicast group joined on one of '
        'its subnets from senders on its other subnets (TTL - 1; networks '
        'with multicast_snooping)')

    def prepare(self, view):
        super().prepare(view)
        gw = self.external_gateway
        if gw and not gw.get('ip'):
            subnets = external_subnets(view, self, 'external_gateway.network_id',
                                       gw['network_id'])
            ip = logical_port.allocate_ip(view, gw['network_id'], subnets)
            if ip is None:
                self.fail('external_gateway.ip', 'no free address on '
                          f'network {gw["network_id"]}')
            self.external_gateway = dict(gw, ip=ip)
            self.mark_allocated('ip')

    def validate(self):
        gw = self.external_gateway
        if gw and gw.get('ip') and \
                ipaddress.ip_address(gw['ip']).version == 6:
            self.fail('external_gateway.ip', 'IPv6 is not NATed: the '
                      'external gateway (SNAT address) must be IPv4')

    def check_in_store(self, view, old):
        gw = self.external_gateway
        if gw:
            subnets = external_subnets(view, self, 'external_gateway.network_id',
                                       gw['network_id'])
            if logical_port.subnet_for(subnets, gw['ip']) is None:
                self.fail('external_gateway.ip', f'{gw["ip"]} is not in a '
                          f'subnet of network {gw["network_id"]}')

    def unique_keys(self):
        keys = list(super().unique_keys())
        gw = self.external_gateway
        if gw:
            keys.append(('ip', f'{gw["network_id"]}/{gw["ip"]}'))
        return keys


@base.register
class LogicalRouterPort(keyed.KeyedModel):
    """A router interface: the router's address on one subnet."""

    table = 'logical_router_port'
    cli_name = 'router-interface'
    cli_columns = ('id', 'router_id', 'subnet_id', 'ip', 'mac')
    key_bits = 31

    router_id = f.Ref('logical_router', required=True, immutable=True,
                      help='router')
    subnet_id = f.Ref('subnet', required=True, immutable=True,
                      help='subnet the router is attached to')
    network_id = f.Ref('logical_switch', immutable=True,
                       help='network of the subnet (derived)')
    ip = f.IpAddress(help='router address; the subnet gateway if unset')
    mac = f.MacAddress(help='router MAC; generated if unset')

    def prepare(self, view):
        super().prepare(view)
        subnet = view.get('subnet', self.subnet_id)
        if subnet is None:
            self.fail('subnet_id', f'subnet {self.subnet_id} does not exist')
        self.network_id = subnet.network_id
        if self.ip is None:
            if subnet.gateway_ip is None:
                self.fail('ip', f'subnet {subnet.id} has no gateway; give one')
            self.ip = subnet.gateway_ip
        if self.mac is None:
            self.mac = logical_port.random_mac()
            self.mark_allocated('mac')

    def check_in_store(self, view, old):
        subnet = view.get('subnet', self.subnet_id)
        if not subnet.contains(self.ip):
            self.fail('ip', f'{self.ip} is not in subnet {subnet.id} '
                      f'({subnet.cidr})')
        for other in view.referrers('logical_router', self.router_id,
                                    'logical_router_port'):
            if other.id == self.id:
                continue
            cidr = view.get('subnet', other.subnet_id).network
            if cidr.overlaps(subnet.network):
                self.fail('subnet_id', f'{subnet.cidr} overlaps {cidr} '
                          f'already on router {self.router_id}')

    def unique_keys(self):
        keys = list(super().unique_keys())
        keys.append(('router_subnet', self.subnet_id))
        keys.append(('ip', f'{self.network_id}/{self.ip}'))
        keys.append(('mac', f'{self.network_id}/{self.mac}'))
        return keys

    def guards(self):
        return [('logical_router', self.router_id)]

    @property
    def cidr(self):
        return ipaddress.ip_address(self.ip)
