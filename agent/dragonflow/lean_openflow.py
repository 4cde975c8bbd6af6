"""os-ken's OpenFlow 1.3 and packet library without what the agent never
uses.

Importing anything of ``os_ken.ofproto`` loads the parsers of every
OpenFlow version os-ken knows (1.0, 1.2, 1.3, 1.4, 1.5), and the 1.3
parser loads the whole packet library, whose TCP, IPv4 and VLAN parsers
import BGP, Zebra, OSPF, SCTP, LLDP, LACP, CFM, LLC/BPDU and PBB (one
``import`` each, at the top). The agent speaks OpenFlow 1.3 only (it sets
the bridge's ``protocols`` to ``OpenFlow13`` before it connects) and
parses ARP, IPv4/IPv6, ICMP/ICMPv6, IGMP, TCP, UDP, DHCP/DHCPv6 in its
packet-ins: the rest is ~12 MB of an idle agent's ~58.

:func:`import_openflow13` imports ``os_ken.ofproto`` and the packet
library while the unused modules are stand-ins: a parser stand-in is
``None``, which os-ken's packet parser takes as "leave the rest as raw
bytes" (what it does for any protocol it does not know), and the unused
versions are left out of the versions os-ken negotiates. The stand-ins
are taken out of ``sys.modules`` afterwards, so code importing one of
these modules later (df-bgp's speaker, a test) gets the real one.
Importing this module does it; the agent's daemon module imports it
right after :mod:`dragonflow.lean`, before anything of os-ken's
(``tests/unit/test_lean.py`` checks what it loads and that the packet-ins
the agent handles still parse).
"""
import logging
import sys
import types

from dragonflow import lean  # noqa: F401 (eventlet first, leanly)

_PACKET = 'os_ken.lib.packet.'
_OFPROTO = 'os_ken.ofproto.'
# Module -> the names its importers read from it, as the stand-in has
# them: a parser class is None (not parsed), a port number stays.
PACKET_STAND_INS = {
    'bgp': {'TCP_SERVER_PORT': 179, 'BGPMessage': None},
    'openflow': {'openflow': None},
    'zebra': {'ZEBRA_PORT': 2600, 'ZebraMessage': None,
              '_ZebraMessageFromZebra': None},
    'ospf': {'ospf': None},
    'sctp': {'sctp': None},
    'lldp': {'lldp': None},
    'slow': {'slow': None},
    'llc': {'llc': None},
    'cfm': {'cfm': None},
    'pbb': {'itag': None},
}
# The OpenFlow versions the agent does not speak, whose modules are
# stand-ins: wire version -> module suffix. 1.0's constants stay real
# (os-ken's controller and NXM code use them); its parser does not. Only
# 1.3 is left in what os-ken negotiates.
UNUSED_VERSIONS = {3: 'v1_2', 5: 'v1_4', 6: 'v1_5'}


def _stand_ins():
    modules = {}
    for name, attrs in PACKET_STAND_INS.items():
        module = types.ModuleType(_PACKET + name)
        module.__dict__.update(attrs)
        modules[module.__name__] = module
    for version, suffix in UNUSED_VERSIONS.items():
        constants = types.ModuleType(f'{_OFPROTO}ofproto_{suffix}')
        constants.OFP_VERSION = version
        modules[constants.__name__] = constants
        parser = f'{_OFPROTO}ofproto_{suffix}_parser'
        modules[parser] = types.ModuleType(parser)
    parser = f'{_OFPROTO}ofproto_v1_0_parser'
    modules[parser] = types.ModuleType(parser)
    return modules


def import_openflow13():
    """Import os-ken's OpenFlow package (1.3 only) and its packet library
    leanly; a no-op if something imported them already. An os-ken whose
    modules need more of a stand-in than it has (checked with Debian 12's
    2.x and PyPI's 4.2) is imported whole instead, with a warning."""
    if _OFPROTO + 'ofproto_protocol' in sys.modules:
        return
    stand_ins = {name: module for name, module in _stand_ins().items()
                 if name not in sys.modules}
    sys.modules.update(stand_ins)
    try:
        from os_ken.lib.packet import packet  # noqa: F401
        from os_ken.ofproto import ofproto_protocol
    except Exception as e:
        failed = e
    else:
        failed = None
        from os_ken.ofproto import ofproto_v1_3
        versions = ofproto_protocol._versions
        for version in [v for v in versions
                        if v != ofproto_v1_3.OFP_VERSION]:
            del versions[version]
        ofproto_protocol._supported_versions &= set(versions)
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
            # The packet package's own imports bound some as its
            # attributes (``from . import lldp``).
            parent, _, child = name.rpartition('.')
            if getattr(sys.modules.get(parent), child, None) is module:
                delattr(sys.modules[parent], child)
    if failed is not None:
        _import_whole(failed)


def _import_whole(failed):
    """Forget what the lean import loaded and import os-ken's OpenFlow
    package and packet library as they are."""
    logging.getLogger(__name__).warning(
        'os-ken needs more of its modules than expected (%s: %s); loading '
        'all of its OpenFlow versions and packet parsers', type(failed)
        .__name__, failed)
    for name in [n for n in sys.modules
                 if n.startswith((_PACKET[:-1], _OFPROTO[:-1]))]:
        del sys.modules[name]
    from os_ken.lib.packet import packet  # noqa: F401,F811
    from os_ken.ofproto import ofproto_protocol  # noqa: F401


import_openflow13()
