import ipaddress

from dragonflow.model import base
from dragonflow.model import fields as f
from dragonflow.model import logical_port
from dragonflow.model import logical_router


@base.register
class FloatingIP(base.Model):
    """A public IPv4 address on an external network, NATed to a port."""

    table = 'floating_ip'
    cli_name = 'floatingip'
    cli_columns = ('id', 'floating_ip_address', 'fixed_ip_address', 'port_id')

    name = f.String(help='display name')
    floating_network_id = f.Ref('logical_switch', required=True, immutable=True,
                                help='external network it comes from')
    floating_ip_address = f.IpAddress(immutable=True,
                                      help='the public address; allocated if unset')
    port_id = f.Ref('logical_port', on_delete='clear',
                    help='associated port, if any')
    fixed_ip_address = f.IpAddress(help='port IP it maps to; the first IPv4 '
                                        'of the port if unset')

    def prepare(self, view):
        if self.port_id is None:
            self.fixed_ip_address = None
        if self.floating_ip_address is None:
            subnets = logical_router.external_subnets(
                view, self, 'floating_network_id', self.floating_network_id)
            ip = logical_port.allocate_ip(view, self.floating_network_id,
                                          subnets)
            if ip is None:
                self.fail('floating_ip_address', 'no free address on network '
                          f'{self.floating_network_id}')
            self.floating_ip_address = ip
            self.mark_allocated('ip')
        if self.port_id and self.fixed_ip_address is None:
            port = view.get('logical_port', self.port_id)
            if port is not None:
                v4 = [ip for ip in port.ips
                      if ipaddress.ip_address(ip).version == 4]
                if v4:
                    self.fixed_ip_address = v4[0]

    def validate(self):
        if ipaddress.ip_address(self.floating_ip_address).version != 4:
            self.fail('floating_ip_address', 'IPv6 is not NATed; floating IPs '
                      'are IPv4 only')
        if self.fixed_ip_address and not self.port_id:
            self.fail('fixed_ip_address', 'needs port_id')

    def check_in_store(self, view, old):
        subnets = logical_router.external_subnets(
            view, self, 'floating_network_id', self.floating_network_id)
        if logical_port.subnet_for(subnets, self.floating_ip_address) is None:
            self.fail('floating_ip_address', f'{self.floating_ip_address} is '
                      f'not in a subnet of network {self.floating_network_id}')
        if self.port_id:
            port = view.get('logical_port', self.port_id)
            if port is None:
                self.fail('port_id', f'port {self.port_id} does not exist')
            if not port.ips:
                self.fail('port_id', f'port {port.id} has no fixed IP')
            if self.fixed_ip_address is None:
                self.fail('fixed_ip_address', f'port {port.id} has no IPv4 '
                          'address to map to')
            if self.fixed_ip_address not in port.ips:
                self.fail('fixed_ip_address', f'{self.fixed_ip_address} is not '
                          f'an address of port {port.id}')

    def unique_keys(self):
        keys = [('ip', f'{self.floating_network_id}/{self.floating_ip_address}')]
        if self.port_id:
            keys.append(('fip_fixed', f'{self.port_id}/{self.fixed_ip_address}'))
        return keys
