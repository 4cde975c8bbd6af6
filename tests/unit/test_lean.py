"""The daemons import eventlet without its green DNS resolver, pyOpenSSL
and setuptools (dragonflow/lean.py): a third of an idle agent's memory.
Each check runs in a fresh interpreter, since this one has imported
whatever other tests needed."""
import os
import subprocess
import sys

import pytest

AGENT = os.path.join(os.path.dirname(__file__), '..', '..', 'agent')
UNWANTED = ('dns', 'OpenSSL', 'cryptography', 'setuptools', 'pkg_resources',
            'requests')


def python(code):
    """code run in a fresh interpreter that finds the agent's package."""
    return subprocess.run(
        [sys.executable, '-c', code], env=dict(os.environ, PYTHONPATH=AGENT),
        check=True, capture_output=True, text=True)


def loaded(statement):
    """Top-level module names loaded after running statement."""
    out = python(
        f'{statement}\nimport sys\n'
        'print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))')
    return set(out.stdout.split())


@pytest.mark.parametrize('module', ['dragonflow.controller.service',
                                    'dragonflow.bgp.service'])
def test_daemon_imports_lean(module):
    found = loaded(f'import {module}\nimport os_ken.base.app_manager')
    assert 'eventlet' in found
    assert not found & set(UNWANTED)


def test_openssl_still_importable_afterwards():
    pytest.importorskip('OpenSSL')
    found = loaded('import dragonflow.lean\nimport OpenSSL')
    assert 'OpenSSL' in found


# The agent's os-ken: OpenFlow 1.3 only, and the packet library without the
# protocols it never parses (dragonflow/lean_openflow.py).
UNUSED_OS_KEN = ('os_ken.lib.packet.bgp', 'os_ken.lib.packet.zebra',
                 'os_ken.lib.packet.ospf', 'os_ken.lib.packet.sctp',
                 'os_ken.lib.packet.lldp',
                 'os_ken.ofproto.ofproto_v1_0_parser',
                 'os_ken.ofproto.ofproto_v1_2_parser',
                 'os_ken.ofproto.ofproto_v1_4_parser',
                 'os_ken.ofproto.ofproto_v1_5_parser')


def run_agent_python(code):
    """stdout of code run in a fresh interpreter that imported the agent's
    daemon module first."""
    return python(
        f'import dragonflow.controller.service\nimport sys\n{code}').stdout


def test_agent_loads_openflow13_and_the_packets_it_parses_only():
    out = run_agent_python(
        'import os_ken.controller.ofp_event\n'
        'from os_ken.ofproto import ofproto_protocol as p\n'
        'print(sorted(p._versions), sorted(p._supported_versions))\n'
        'print(" ".join(sorted(sys.modules)))')
    versions, modules = out.splitlines()
    assert versions == '[4] [4]'
    assert not set(UNUSED_OS_KEN) & set(modules.split())
    assert 'os_ken.ofproto.ofproto_v1_3_parser' in modules.split()


PARSE = '''
from os_ken.lib.packet import (arp, dhcp, ethernet, icmp, icmpv6, igmp, ipv4,
                               ipv6, packet, tcp, udp, vlan)
def parsed(*headers):
    p = packet.Packet()
    for h in headers:
        p.add_protocol(h)
    p.serialize()
    return [type(h).__name__ for h in packet.Packet(bytes(p.data)).protocols]
eth = ethernet.ethernet(ethertype=0x0800)
eth6 = ethernet.ethernet(ethertype=0x86dd)
v4 = dict(src='10.0.0.1', dst='10.0.0.2')
v6 = dict(src='fe80::1', dst='fe80::2')
print(parsed(ethernet.ethernet(ethertype=0x0806), arp.arp()))
print(parsed(ethernet.ethernet(ethertype=0x8100),
             vlan.vlan(vid=5, ethertype=0x0806), arp.arp()))
print(parsed(eth, ipv4.ipv4(proto=1, **v4), icmp.icmp(data=icmp.echo())))
print(parsed(eth, ipv4.ipv4(proto=17, **v4), udp.udp(src_port=68,
             dst_port=67), dhcp.dhcp(op=1, chaddr='00:00:00:00:00:01')))
print(parsed(eth, ipv4.ipv4(proto=2, **v4), igmp.igmp()))
nd = icmpv6.nd_neighbor(dst='fe80::2')
print(parsed(eth6, ipv6.ipv6(nxt=58, **v6), icmpv6.icmpv6(type_=135,
                                                          data=nd)))
print(parsed(eth, ipv4.ipv4(proto=6, **v4), tcp.tcp(dst_port=80), b'GET'))
print(parsed(eth, ipv4.ipv4(proto=6, **v4), tcp.tcp(dst_port=179),
             b'\\xff' * 19))
print(parsed(eth, ipv4.ipv4(proto=132, **v4), b'\\x01' * 12))
'''


def test_agent_still_parses_its_packet_ins():
    assert run_agent_python(PARSE).splitlines() == [
        "['ethernet', 'arp']",
        "['ethernet', 'vlan', 'arp']",
        "['ethernet', 'ipv4', 'icmp']",
        "['ethernet', 'ipv4', 'udp', 'dhcp']",
        "['ethernet', 'ipv4', 'igmp']",
        "['ethernet', 'ipv6', 'icmpv6']",
        "['ethernet', 'ipv4', 'tcp', 'bytes']",
        # Protocols the agent never parses stay raw bytes.
        "['ethernet', 'ipv4', 'tcp', 'bytes']",
        "['ethernet', 'ipv4', 'bytes']",
    ]


def test_the_real_modules_stay_importable_afterwards():
    out = run_agent_python(
        'from os_ken.lib.packet import bgp, lldp\n'
        'from os_ken.ofproto import ofproto_v1_5_parser\n'
        'print(bgp.BGPMessage.__name__, lldp.lldp.__name__,'
        ' ofproto_v1_5_parser.OFPHello.__name__)')
    assert out.split() == ['BGPMessage', 'lldp', 'OFPHello']


FALLBACK = """
import importlib.util
spec = importlib.util.find_spec('dragonflow.lean_openflow')
source = open(spec.origin).read().replace(
    "'lldp': {'lldp': None}", "'lldp': {}")
assert "'lldp': {}" in source
exec(compile(source, spec.origin, 'exec'), {'__name__': 'lean_test'})
from os_ken.lib.packet import lldp, packet, vlan
from os_ken.ofproto import ofproto_protocol as p
print(lldp.lldp.__name__, sorted(p._versions))
"""


def test_an_os_ken_needing_more_of_a_stand_in_is_imported_whole():
    # A stand-in lacking what a (future) os-ken module reads at import:
    # the agent still starts, with all of os-ken's modules.
    out = python(FALLBACK)
    assert out.stdout.split() == ['lldp', '[1,', '3,', '4,', '5,', '6]']
    assert 'loading all of its OpenFlow versions' in out.stderr
