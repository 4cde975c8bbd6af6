import ipaddress
import itertools
import random

from dragonflow.model import base
from dragonflow.model import fields as f
from dragonflow.model import keyed


def random_mac():
    """A locally administered unicast MAC in the OpenStack fa:16:3e range."""
    return 'fa:16:3e:%02x:%02x:%02x' % tuple(random.randrange(256)
                                             for _ in range(3))


class AddressPair(base.Struct):
    ip_address = f.IpAddressOrNetwork(required=True,
                                      help='address or CIDR the port may use')
    mac_address = f.MacAddress(help='MAC it may use; the port MAC if unset')


def eui64(prefix, mac):
    """The SLAAC address of mac in an IPv6 prefix (RFC 4291 EUI-64)."""
    octets = bytes.fromhex(mac.replace(':', ''))
    interface = bytes([octets[0] ^ 0x02]) + octets[1:3] + b'\xff\xfe' + \
        octets[3:]
    network = ipaddress.ip_network(prefix, strict=False)
    return str(network.network_address + int.from_bytes(interface, 'big'))


def link_local(mac):
    return eui64('fe80::/64', mac)


SLAAC_MODES = ('slaac', 'dhcpv6-stateless')


def subnet_for(subnets, address):
    for subnet in subnets:
        if subnet.contains(address):
            return subnet
    return None


def allocate_ip(view, network_id, subnets, version=4):
    """First free host address of the network's subnets of a version
    (after the last one this view allocated there: a bulk write of many
    ports does not rescan the addresses it just took)."""
    used = view.index_keys('ip', network_id)
    cursors = view.cursors
    for subnet in subnets:
        net = subnet.network
        if net.version != version:
            continue
        first, last = int(net.network_address), int(net.broadcast_address)
        if net.num_addresses > 2 and version == 4:
            first, last = first + 1, last - 1       # not network/broadcast
        elif version == 6:
            first += 1                              # not the anycast one
        start = max(first, cursors.get((network_id, subnet.id), first))
        for value in itertools.chain(range(start, last + 1),
                                     range(first, start)):
            ip = str(ipaddress.ip_address(value))
            if ip != subnet.gateway_ip and ip not in used:
                cursors[(network_id, subnet.id)] = value + 1
                return ip
    return None


@base.register
class LogicalPort(keyed.KeyedModel):
    """A VM (or other device) interface on a network."""

    table = 'logical_port'
    cli_name = 'port'
    cli_columns = ('id', 'name', 'network_id', 'macs', 'ips',
                   'binding_chassis')
    key_bits = 31
    feed_with = 'network_id'

    name = f.String(help='display name')
    network_id = f.Ref('logical_switch', required=True, immutable=True,
                       help='network of the port')
    macs = f.List(f.MacAddress(), help='MAC addresses; one is generated if unset')
    ips = f.List(f.IpAddress(), help='fixed IPs; one is allocated if unset')
    subnets = f.List(f.Ref('subnet'), help='subnets of the fixed IPs (derived)')
    binding_chassis = f.Ref('chassis', enforced=False,
                            help='chassis the port is plugged on')
    security_groups = f.List(f.Ref('security_group'),
                             help='security group ids')
    allowed_address_pairs = f.List(
        f.Nested(AddressPair),
        help='extra source addresses: ip_address=IP|CIDR[,mac_address=MAC];...')
    port_security_enabled = f.Boolean(default=True,
                                      help='drop spoofed MAC/IP from the port')
    device_owner = f.String(help='what uses the port, e.g. compute:nova')
    device_id = f.String(help='id of the device using the port')
    enabled = f.Boolean(default=True, help='administrative state')

    def is_protected(self):
        """Whether its security groups filter it: port security on and at
        least one group."""
        return bool(self.port_security_enabled and self.security_groups)

    def prepare(self, view):
        super().prepare(view)
        if not self.macs:
            self.macs = [random_mac()]
            self.mark_allocated('mac')
        if self.version is None and not self.ips:
            subnets = view.referrers('logical_switch', self.network_id, 'subnet')
            ips = [allocate_ip(view, self.network_id, subnets)]
            # IPv6: the SLAAC address where the subnet's hosts configure
            # themselves from router advertisements, else the first free.
            v6 = [s for s in subnets if s.network.version == 6]
            if v6 and v6[0].ipv6_address_mode in SLAAC_MODES:
                ips.append(eui64(v6[0].cidr, self.macs[0]))
            elif v6:
                ips.append(allocate_ip(view, self.network_id, v6, version=6))
            ips = [ip for ip in ips if ip]
            if ips:
                self.ips = ips
                self.mark_allocated('ip')

    def check_in_store(self, view, old):
        if old is not None and self.ips == old.ips and \
                bool(old.subnets) == bool(old.ips):
            # The addresses were checked when written, and the subnets
            # they are in stay (immutable prefixes, enforced references):
            # an update leaving them (a binding written) reads no subnet.
            self.subnets = list(old.subnets)
        else:
            self.subnets = self._subnets_of_ips(view)
        if self.port_security_enabled is False and self.security_groups:
            self.fail('security_groups', 'need port_security_enabled')

    def _subnets_of_ips(self, view):
        subnets = view.referrers('logical_switch', self.network_id, 'subnet')
        derived = []
        for i, ip in enumerate(self.ips):
            subnet = subnet_for(subnets, ip)
            if subnet is None:
                self.fail(f'ips[{i}]', f'{ip} is not in any subnet of network '
                          f'{self.network_id}')
            if ip == subnet.gateway_ip:
                self.fail(f'ips[{i}]', f'{ip} is the gateway of subnet '
                          f'{subnet.id}')
            if subnet.id not in derived:
                derived.append(subnet.id)
        return derived

    def validate(self):
        if not self.macs:
            self.fail('macs', 'at least one MAC is required')

    def unique_keys(self):
        keys = list(super().unique_keys())
        keys += [('ip', f'{self.network_id}/{ip}') for ip in self.ips]
        keys += [('mac', f'{self.network_id}/{mac}') for mac in self.macs]
        return keys

    def ip_versions(self):
        return {ipaddress.ip_address(ip).version for ip in self.ips}
