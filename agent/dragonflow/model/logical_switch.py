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
    # Multicast (controller/apps/multicast.py): off, IP multicast floods
    # like broadcast; on, it goes only where IGMP/MLD reports say.
    multicast_snooping = f.Boolean(
        default=False, help='IGMP/MLD snooping: multicast only to the '
        'ports and chassis that joined (tunnelled networks)')
    multicast_flood_unregistered = f.Boolean(
        default=False, help='with snooping: flood groups nobody joined '
        '(default: drop them)')
    multicast_querier_address = f.IpAddress(
        version=4, help='source of the IGMP queries (default: the gateway '
        'of the network\'s first IPv4 subnet, else 0.0.0.0)')
    multicast_query_interval = f.Integer(
        min=2, max=3600, default=125, help='seconds between general '
        'queries (RFC 3376: 125)')
    multicast_query_response = f.Integer(
        min=1, max=25, default=10, help='max response time of a general '
        'query, seconds (10)')
    multicast_robustness = f.Integer(
        min=1, max=7, default=2, help='robustness variable (2)')
    multicast_last_member_interval = f.Integer(
        min=1, max=25, default=1, help='seconds a leave waits for another '
        'member to answer the group query (1)')

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
        if self.multicast_snooping and ntype not in TUNNELED:
            self.fail('multicast_snooping', f'is for tunnelled networks: '
                      f'a {ntype} network\'s multicast is the physical '
                      'switches\' to snoop')
        if self.multicast_query_response >= self.multicast_query_interval:
            self.fail('multicast_query_response', 'must be shorter than '
                      'multicast_query_interval')
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
