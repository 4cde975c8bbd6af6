"""Tap as a service (tap-as-a-service's names and meanings): a tap service
is a monitoring port; tap flows copy a source port's traffic to it.

Direction is the source VM's point of view: ``IN`` what it receives,
``OUT`` what it sends, ``BOTH``. ``position`` says whether copies are
taken after the security groups (the default: what the VM really sends
and receives) or before them (also what they drop). ``vlan_filter``
(``"9,18-27,36"``) keeps, on a trunk port, only those VLANs' frames.
"""
from dragonflow.model import base
from dragonflow.model import fields as f
from dragonflow.model import keyed

VLAN_FILTER = (r'^\s*\d{1,4}(\s*-\s*\d{1,4})?'
               r'(\s*,\s*\d{1,4}(\s*-\s*\d{1,4})?)*\s*$')


def vlans(text):
    """The VLAN ids of a filter like ``9,18-27,36``, as a sorted list of
    (low, high) ranges; ValueError naming what is wrong."""
    out = []
    for part in text.split(','):
        low, _, high = part.strip().partition('-')
        low, high = int(low), int(high or low)
        if not 1 <= low <= 4094 or not 1 <= high <= 4094:
            raise ValueError(f'{part.strip()}: VLAN ids are 1-4094')
        if low > high:
            raise ValueError(f'{part.strip()}: the range is reversed')
        out.append((low, high))
    return sorted(out)


@base.register
class TapService(keyed.KeyedModel):
    """A monitoring port: copies of the tapped traffic are delivered to
    it, and only to it."""

    table = 'tap_service'
    cli_name = 'tap-service'
    cli_columns = ('id', 'name', 'port_id')

    name = f.String(help='display name')
    description = f.String(help='free text')
    port_id = f.Ref('logical_port', required=True, immutable=True,
                    help='the monitoring port (port security off)')

    def check_in_store(self, view, old):
        port = view.get('logical_port', self.port_id)
        if port is not None and port.port_security_enabled:
            self.fail('port_id', f'port {self.port_id} has port security '
                      'on: a tap service port receives other ports\' '
                      'traffic (turn it off)')

    def unique_keys(self):
        # One service per monitoring port.
        return list(super().unique_keys()) + [('tap_port', self.port_id)]


@base.register
class TapFlow(base.Model):
    """Copies of a source port's traffic, one direction or both, to a tap
    service."""

    table = 'tap_flow'
    cli_name = 'tap-flow'
    cli_columns = ('id', 'name', 'tap_service_id', 'source_port',
                   'direction', 'position')

    name = f.String(help='display name')
    description = f.String(help='free text')
    tap_service_id = f.Ref('tap_service', required=True, immutable=True,
                           help='where the copies go')
    source_port = f.Ref('logical_port', required=True, immutable=True,
                        help='the port whose traffic is copied')
    direction = f.Enum('IN', 'OUT', 'BOTH', default='BOTH',
                       help='IN (what the VM receives), OUT (what it '
                       'sends) or BOTH')
    vlan_filter = f.String(pattern=VLAN_FILTER,
                           help='only these VLANs of a trunk port, e.g. '
                           '9,18-27,36')
    position = f.Enum('after-sg', 'before-sg', default='after-sg',
                      help='copies taken after the security groups (what '
                      'the VM really sends and gets) or before them')

    def validate(self):
        if self.vlan_filter is not None:
            try:
                vlans(self.vlan_filter)
            except ValueError as e:
                self.fail('vlan_filter', str(e))

    def check_in_store(self, view, old):
        service = view.get('tap_service', self.tap_service_id)
        if service is not None and service.port_id == self.source_port:
            self.fail('source_port', 'is the tap service\'s own port')
        if self.vlan_filter is not None and not view.referrers(
                'logical_port', self.source_port, 'trunk'):
            self.fail('vlan_filter', f'port {self.source_port} is not a '
                      'trunk parent (no VLANs to filter)')

    def unique_keys(self):
        return [('tap_source', f'{self.tap_service_id}/{self.source_port}')]
