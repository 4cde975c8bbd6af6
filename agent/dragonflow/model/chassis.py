from dragonflow.model import base
from dragonflow.model import fields as f


@base.register
class Chassis(base.Model):
    """A node running a local controller; its id is the OVS system-id."""

    table = 'chassis'
    cli_name = 'chassis'
    cli_columns = ('id', 'hostname', 'ip', 'tunnel_types')

    hostname = f.String(help='host name')
    ip = f.IpAddress(required=True, help='underlay (tunnel endpoint) address')
    tunnel_types = f.List(f.Enum('geneve', 'vxlan'), default=lambda: ['geneve'],
                          help='tunnel types the chassis terminates')
    external_host_ip = f.IpAddress(
        help='address used for distributed SNAT of local ports')
    bridge_mappings = f.List(f.String(pattern=r'^[^:]+:[^:]+$'),
                             help='physnet:bridge pairs')
