import random

from dragonflow.model import fields as f
from dragonflow.model import base
from dragonflow.model import keyed

TUNNELED = ('vxlan', 'geneve')
SEGMENT_RANGE = {'vxlan': (1, 2 ** 24 - 2), 'geneve': (1, 2 ** 24 - 2),
                 'vlan': (1, 4094)}


@base.register
class LogicalSwitch(keyed.KeyedModel):
    """A network (L2 broadcast domain)."""

    table = 'logical_switch'
    cli_name = 'network'
    cli_columns = ('id', 'name', 'network_type', 'segmentation_id', 'mtu',
                   'external')
    key_bits = 16       # the key is also the network's conntrack zone
    key_max = 2 ** 16 - 2

    name = f.String(help='display name')
    network_type = f.Enum('vxlan', 'geneve', 'vlan', 'flat', default='geneve',
                          immutable=True, help='segmentation type')
    # VNI 2 ** 24 - 1 is reserved: it carries mirrored traffic (tap).
    segmentation_id = f.Integer(min=1, max=2 ** 24 - 2, immutable=True,
                                help='VNI or VLAN id; allocated for tunnels '
                                     'when not given (16777215 is '
                                     'reserved for mirrored traffic)')
    physical_network = f.String(max_length=64, pattern=r'^[^:/\s]+$',
                                immutable=True,
                                help='physnet for vlan/flat networks')
    mtu = f.Integer(min=68, max=9216, default=1450, help='MTU for ports')
    external = f.Boolean(default=False,
                         help='provider network used for floating IPs / SNAT')

    def prepare(self, view):
        super().prepare(view)
        if self.segmentation_id is None and self.network_type in TUNNELED:
            self.segmentation_id = random.randint(
                *SEGMENT_RANGE[self.network_type])
            self.mark_allocated('segment')

    def validate(self):
        if self.unique_key is not None and self.unique_key > self.key_max:
            self.fail('unique_key', f'{self.unique_key} is above '
                      f'{self.key_max} (network keys are conntrack zones; '
                      f'{self.key_max + 1} is the NAT zone)')
        ntype = self.network_type
        if ntype in ('vlan', 'flat') and not self.physical_network:
            self.fail('physical_network', f'is required for {ntype} networks')
        if ntype in TUNNELED and self.physical_network:
            self.fail('physical_network', f'is not used by {ntype} networks')
        if ntype == 'flat' and self.segmentation_id is not None:
            self.fail('segmentation_id', 'is not used by flat networks')
        if ntype == 'vlan' and self.segmentation_id is None:
            self.fail('segmentation_id', 'is required for vlan networks')
        low, high = SEGMENT_RANGE.get(ntype, (None, None))
        seg = self.segmentation_id
        if seg is not None and not low <= seg <= high:
            self.fail('segmentation_id',
                      f'{seg} is out of range {low}..{high} for {ntype}')

    def unique_keys(self):
        keys = list(super().unique_keys())
        if self.network_type in TUNNELED:
            keys.append(('segment', f'{self.network_type}:{self.segmentation_id}'))
        elif self.network_type == 'vlan':
            keys.append(('segment', f'vlan:{self.physical_network}:'
                                    f'{self.segmentation_id}'))
        else:
            keys.append(('segment', f'flat:{self.physical_network}'))
        return keys
