"""Trunk ports (VLAN-aware VMs), as in Neutron: a trunk names its parent
port; each subport is another logical port (on any network) reached
through the parent's interface with a VLAN tag."""
from dragonflow.model import base
from dragonflow.model import fields as f


@base.register
class Trunk(base.Model):
    """A trunk: its parent port carries untagged traffic itself and the
    subports' traffic tagged."""

    table = 'trunk'
    cli_name = 'trunk'
    cli_columns = ('id', 'name', 'port_id')

    name = f.String(help='display name')
    port_id = f.Ref('logical_port', required=True, immutable=True,
                    help='parent port')

    def check_in_store(self, view, old):
        if any(c.port_id == self.port_id for c in view.referrers(
                'logical_port', self.port_id, 'child_port_segmentation')):
            self.fail('port_id', f'port {self.port_id} is a subport of a '
                      'trunk (trunks do not nest)')

    def unique_keys(self):
        return [('trunk_parent', self.port_id)]


@base.register
class ChildPortSegmentation(base.Model):
    """A subport: port_id reached through the trunk's parent interface
    with VLAN segmentation_id."""

    table = 'child_port_segmentation'
    cli_name = 'trunk-subport'
    cli_columns = ('id', 'trunk_id', 'port_id', 'segmentation_type',
                   'segmentation_id')

    trunk_id = f.Ref('trunk', required=True, immutable=True, help='trunk')
    port_id = f.Ref('logical_port', required=True, immutable=True,
                    help='the subport')
    segmentation_type = f.Enum('vlan', default='vlan', immutable=True,
                               help='how the subport is told apart')
    segmentation_id = f.Integer(min=1, max=4094, required=True,
                                immutable=True, help='VLAN id (1-4094)')
    # Derived: the parent port, so the datapath needs no trunk lookup.
    parent_id = f.Ref('logical_port', immutable=True,
                      help='parent port of the trunk (derived)')

    def prepare(self, view):
        trunk = view.get('trunk', self.trunk_id)
        if trunk is None:
            self.fail('trunk_id', f'trunk {self.trunk_id} does not exist')
        self.parent_id = trunk.port_id

    def check_in_store(self, view, old):
        if self.port_id == self.parent_id:
            self.fail('port_id', 'is the parent port of the trunk')
        if view.referrers('logical_port', self.port_id, 'trunk'):
            self.fail('port_id', f'port {self.port_id} is the parent of a '
                      'trunk (trunks do not nest)')

    def unique_keys(self):
        return [('trunk_child', self.port_id),
                ('trunk_vlan', f'{self.trunk_id}/{self.segmentation_id}')]
