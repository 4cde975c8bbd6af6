"""The Geneve option that carries the destination port key.

A Geneve packet to a remote port carries the port's key in an option
(Dragonflow's class 0x0102, type 0x80, 4 bytes), which the bridge's TLV map
turns into the OVS field ``tun_metadata0``. The receiving chassis matches
(tunnel port, VNI, port key) in table 0 and goes straight to the ingress
stages: no second lookup on the destination MAC. VXLAN has no room for the
key and flooded packets carry none; those take the MAC lookup in table 100.

os-ken (2.5 in Debian 12, 4.x on PyPI) has neither a ``tun_metadata`` field
nor the TLV table message: this module registers ``tun_metadata0`` as a
4-byte NXM_1 field (number 40; OVS takes the length of the mapped option)
and builds NXT_TLV_TABLE_MOD itself. The map is not stored in OVSDB, so it is
sent on every switch connection, before any flow; a vswitchd that kept it
(the agent restarted) answers that it is already mapped, which is fine.
"""
import struct

from os_ken.lib import type_desc
from os_ken.ofproto import ofproto_common
from os_ken.ofproto import ofproto_v1_3
from os_ken.ofproto import oxm_fields

FIELD = 'tun_metadata0'
NXM_NUMBER = 40                 # NXM_NX_TUN_METADATA0
OPTION_CLASS = 0x0102
OPTION_TYPE = 0x80
OPTION_LEN = 4
NXT_TLV_TABLE_MOD = 24
NXTTMC_ADD = 0


def register_field(ofproto=ofproto_v1_3):
    """Teach os-ken's OpenFlow 1.3 codec the tun_metadata0 field."""
    if any(field.name == FIELD for field in ofproto.oxm_types):
        return
    ofproto.oxm_types.append(
        oxm_fields.NiciraExtended1(FIELD, NXM_NUMBER, type_desc.Int4))
    oxm_fields.generate(ofproto.__name__)


def tlv_map(dp):
    """NXT_TLV_TABLE_MOD adding our option as tun_metadata0."""
    body = struct.pack('!H6x', NXTTMC_ADD) + struct.pack(
        '!HBBH2x', OPTION_CLASS, OPTION_TYPE, OPTION_LEN, 0)
    return dp.ofproto_parser.OFPExperimenter(
        dp, ofproto_common.NX_EXPERIMENTER_ID, NXT_TLV_TABLE_MOD, body)


register_field()
