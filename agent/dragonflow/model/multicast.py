"""Multicast group membership, as the agents learn it (IGMP and MLD
snooping, ``controller/apps/multicast.py``): one record per chassis,
network and group, listing that chassis' member ports. Written only by
the agent of that chassis (in batches: all the reports of a short burst
in one write per group), read by every chassis with ports on the network
to know where members are. Nobody creates these by hand; ``dfctl
multicast list`` shows them.
"""
import ipaddress
import uuid

from dragonflow.model import base
from dragonflow.model import fields as f

TABLE = 'multicast_group'
ID_NAMESPACE = uuid.UUID('0b7a7f61-3a1e-4b43-9d55-4c2c6a1f5e20')


def record_id(chassis_id, network_id, address):
    """The record of a group on a chassis has a deterministic id, so an
    agent finds (and replaces) its own records without a query."""
    return str(uuid.uuid5(ID_NAMESPACE,
                          f'{chassis_id}/{network_id}/{address}'))


def querier_address(network, subnets):
    """The source of a snooping network's IGMP queries: its
    ``multicast_querier_address``, else the gateway of its first IPv4
    subnet (by id) that has one, else 0.0.0.0."""
    if network.multicast_querier_address:
        return network.multicast_querier_address
    for subnet in sorted(subnets, key=lambda s: s.id):
        if subnet.network.version == 4 and subnet.gateway_ip:
            return subnet.gateway_ip
    return '0.0.0.0'


@base.register
class MulticastGroup(base.Model):
    """The member ports of a multicast group on one chassis."""

    table = TABLE
    # Distributed with the network: every chassis with ports there sees it.
    feed_with = 'network_id'

    network_id = f.Ref('logical_switch', enforced=False, required=True,
                       immutable=True, help='the network')
    chassis = f.Ref('chassis', enforced=False, required=True,
                    immutable=True, help='where the members are')
    address = f.IpAddress(required=True, immutable=True,
                          help='the group (IPv4 or IPv6 multicast)')
    ports = f.List(f.Ref('logical_port', enforced=False),
                   help='member ports on that chassis')

    def validate(self):
        if not ipaddress.ip_address(self.address).is_multicast:
            self.fail('address', f'{self.address} is not a multicast '
                      'address')
        if self.id != record_id(self.chassis, self.network_id,
                                self.address):
            self.fail('id', 'must be record_id(chassis, network, address)')
