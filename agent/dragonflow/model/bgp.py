from dragonflow.model import base
from dragonflow.model import fields as f

AS_NUMBER = dict(min=1, max=2 ** 32 - 1)


@base.register
class BgpPeer(base.Model):
    """A BGP neighbour of the df-bgp speaker."""

    table = 'bgp_peer'
    cli_name = 'bgp-peer'
    cli_columns = ('id', 'name', 'peer_ip', 'remote_as')

    name = f.String(help='display name')
    peer_ip = f.IpAddress(required=True, help='neighbour address')
    remote_as = f.Integer(required=True, help='neighbour AS number', **AS_NUMBER)
    password = f.String(help='TCP MD5 password')

    def unique_keys(self):
        return [('bgp_peer_ip', self.peer_ip)]


@base.register
class BgpSpeaker(base.Model):
    """What df-bgp advertises, as which AS, to which peers."""

    table = 'bgp_speaker'
    cli_name = 'bgp-speaker'
    cli_columns = ('id', 'name', 'local_as', 'peers', 'networks')

    name = f.String(help='display name')
    local_as = f.Integer(required=True, help='local AS number', **AS_NUMBER)
    router_id = f.IpAddress(version=4, help='BGP router id; the host address '
                                            'if unset')
    ip_version = f.Enum(4, 6, default=4, immutable=True,
                        help='address family advertised')
    peers = f.List(f.Ref('bgp_peer', on_delete='clear'), help='peer ids')
    networks = f.List(f.Ref('logical_switch'),
                      help='external networks whose routers are advertised')
    advertise_tenant_networks = f.Boolean(
        default=True, help='advertise subnets behind routers (next hop: '
                           'router gateway)')
    advertise_floating_ip_host_routes = f.Boolean(
        default=True, help='advertise floating IP /32s (next hop: chassis)')
