"""A small NB world for flow tests, with every feature one chassis sees.

Chassis ch1 (this one) and ch2. Networks: ``net`` (Geneve, IPv4 and an
IPv6 SLAAC/DHCPv6-stateless subnet), ``net2`` (VXLAN, DHCPv6-stateful
IPv6), ``vlan100`` (a VLAN provider network) and ``public`` (flat,
external). Router ``r`` joins net, net2 and vlan100 and has its gateway on
public, with an extra route through vm3. Ports: vm1 (local, net, security
group ``web``, a floating IP), vm2 (ch2, net), vm3 (local, net2, port
security off), parent (local, net2, a trunk with subport ``child`` on
VLAN 10 of net), sf-in/sf-out (a service function on net, local) and a
chain from vm1 through it; pv1 (local) and pv2 (ch2) on vlan100; a load
balancer on net with members on net and net2; multicast snooping on net
with groups joined here and on ch2.
"""
import types

from dragonflow.controller.state import LocalState
from dragonflow.model import base
from dragonflow.model import multicast as mcm


def obj(table, **data):
    return base.model_for(table).from_dict(data)


def mac(key):
    return 'fa:16:3e:00:00:%02x' % key


def membership(chassis, network, group, ports):
    """A multicast_group record (chassis' members of a group)."""
    return ('multicast_group', dict(
        id=mcm.record_id(chassis, network, group), network_id=network,
        chassis=chassis, address=group, ports=ports))


OBJECTS = [
    ('chassis', dict(id='ch1', ip='192.0.2.1',
                     external_host_ip='172.24.4.101')),
    ('chassis', dict(id='ch2', ip='192.0.2.2')),
    ('logical_switch', dict(id='net', unique_key=9, segmentation_id=5,
                            network_type='geneve', multicast_snooping=True)),
    ('logical_switch', dict(id='net2', unique_key=10, segmentation_id=6,
                            network_type='vxlan', multicast_snooping=True)),
    ('logical_switch', dict(id='vlan100', unique_key=11,
                            segmentation_id=100, network_type='vlan',
                            physical_network='physnet1')),
    ('logical_switch', dict(id='public', unique_key=2, external=True,
                            network_type='flat', physical_network='physnet1')),
    ('subnet', dict(id='sub', network_id='net', cidr='10.0.0.0/24',
                    gateway_ip='10.0.0.1', dns_nameservers=['10.0.0.53'])),
    ('subnet', dict(id='sub6', network_id='net', cidr='fd00:1::/64',
                    gateway_ip='fd00:1::1', ipv6_ra_mode='dhcpv6-stateless',
                    ipv6_address_mode='dhcpv6-stateless')),
    ('subnet', dict(id='sub2', network_id='net2', cidr='10.0.1.0/24',
                    gateway_ip='10.0.1.1')),
    ('subnet', dict(id='sub2v6', network_id='net2', cidr='fd00:2::/64',
                    gateway_ip='fd00:2::1', ipv6_ra_mode='dhcpv6-stateful',
                    ipv6_address_mode='dhcpv6-stateful')),
    ('subnet', dict(id='subv', network_id='vlan100', cidr='10.0.100.0/24',
                    gateway_ip='10.0.100.1', enable_dhcp=False)),
    ('subnet', dict(id='pub4', network_id='public', cidr='172.24.4.0/24',
                    gateway_ip='172.24.4.1')),
    ('logical_router', dict(
        id='r', unique_key=4, multicast_relay=True,
        routes=[{'destination': '192.168.9.0/24', 'nexthop': '10.0.1.7'}],
        external_gateway={'network_id': 'public', 'ip': '172.24.4.2'})),
    ('logical_router_port', dict(id='rp', router_id='r', subnet_id='sub',
                                 network_id='net', ip='10.0.0.1',
                                 mac=mac(0xa1), unique_key=30)),
    ('logical_router_port', dict(id='rp6', router_id='r', subnet_id='sub6',
                                 network_id='net', ip='fd00:1::1',
                                 mac=mac(0xa1), unique_key=31)),
    ('logical_router_port', dict(id='rp2', router_id='r', subnet_id='sub2',
                                 network_id='net2', ip='10.0.1.1',
                                 mac=mac(0xa2), unique_key=32)),
    ('logical_router_port', dict(id='rp2v6', router_id='r',
                                 subnet_id='sub2v6', network_id='net2',
                                 ip='fd00:2::1', mac=mac(0xa2),
                                 unique_key=33)),
    ('logical_router_port', dict(id='rpv', router_id='r', subnet_id='subv',
                                 network_id='vlan100', ip='10.0.100.1',
                                 mac=mac(0xa3), unique_key=34)),
    ('security_group', dict(id='web', unique_key=1)),
    ('security_group_rule', dict(id='web-ssh', security_group_id='web',
                                 direction='ingress', protocol='tcp',
                                 port_range_min=22, port_range_max=22,
                                 remote_ip_prefix='0.0.0.0/0')),
    ('security_group_rule', dict(id='web-peers', security_group_id='web',
                                 direction='ingress', protocol='icmp',
                                 remote_group_id='web')),
    ('security_group_rule', dict(id='web-out', security_group_id='web',
                                 direction='egress')),
    ('security_group_rule', dict(id='web-out6', security_group_id='web',
                                 direction='egress', ethertype='IPv6')),
    ('logical_port', dict(id='vm1', network_id='net', unique_key=11,
                          ips=['10.0.0.5', 'fd00:1::5'], macs=[mac(11)],
                          security_groups=['web'],
                          allowed_address_pairs=[
                              {'ip_address': '10.0.0.200'}])),
    ('logical_port', dict(id='vm2', network_id='net', unique_key=12,
                          ips=['10.0.0.6'], macs=[mac(12)],
                          binding_chassis='ch2', security_groups=['web'])),
    ('logical_port', dict(id='vm3', network_id='net2', unique_key=13,
                          ips=['10.0.1.7', 'fd00:2::7'], macs=[mac(13)],
                          port_security_enabled=False)),
    ('logical_port', dict(id='parent', network_id='net2', unique_key=14,
                          ips=['10.0.1.8'], macs=[mac(14)])),
    ('logical_port', dict(id='child', network_id='net', unique_key=15,
                          ips=['10.0.0.15'], macs=[mac(15)])),
    ('trunk', dict(id='t', port_id='parent')),
    ('child_port_segmentation', dict(id='t-child', trunk_id='t',
                                     port_id='child', parent_id='parent',
                                     segmentation_id=10)),
    ('logical_port', dict(id='sf-in', network_id='net', unique_key=16,
                          ips=['10.0.0.16'], macs=[mac(16)],
                          port_security_enabled=False)),
    ('logical_port', dict(id='sf-out', network_id='net', unique_key=17,
                          ips=['10.0.0.17'], macs=[mac(17)],
                          port_security_enabled=False)),
    ('logical_port', dict(id='pv1', network_id='vlan100', unique_key=18,
                          ips=['10.0.100.5'], macs=[mac(18)])),
    ('logical_port', dict(id='pv2', network_id='vlan100', unique_key=19,
                          ips=['10.0.100.6'], macs=[mac(19)],
                          binding_chassis='ch2')),
    ('floating_ip', dict(id='fip', floating_network_id='public',
                         floating_ip_address='172.24.4.50', port_id='vm1',
                         fixed_ip_address='10.0.0.5')),
    ('port_pair', dict(id='pp', ingress_port='sf-in', egress_port='sf-out')),
    ('port_pair_group', dict(id='ppg', port_pairs=['pp'])),
    ('flow_classifier', dict(id='fc', logical_source_port='vm1',
                             protocol='tcp', destination_port_range_min=80,
                             destination_port_range_max=80)),
    ('port_chain', dict(id='pc', port_pair_groups=['ppg'],
                        flow_classifiers=['fc'])),
    # Load balancer: VIP 10.0.0.100:80 on net, members vm2 (weight 2) and
    # vm3 (net2, routed), and a drained one (vm1).
    ('logical_port', dict(id='vip', network_id='net', unique_key=20,
                          ips=['10.0.0.100'], macs=[mac(20)],
                          port_security_enabled=False,
                          device_owner='Octavia', device_id='lb')),
    ('loadbalancer', dict(id='lb', vip_subnet_id='sub', vip_network_id='net',
                          vip_address='10.0.0.100', vip_port_id='vip')),
    ('pool', dict(id='pool', loadbalancer_id='lb', protocol='TCP',
                  lb_algorithm='ROUND_ROBIN')),
    ('pool', dict(id='sticky', loadbalancer_id='lb', protocol='UDP',
                  lb_algorithm='SOURCE_IP',
                  session_persistence={'type': 'SOURCE_IP',
                                       'persistence_timeout': 60})),
    ('listener', dict(id='dns', loadbalancer_id='lb', protocol='UDP',
                      protocol_port=53, default_pool_id='sticky',
                      unique_key=41)),
    ('member', dict(id='m-dns', pool_id='sticky', address='10.0.0.6',
                    protocol_port=5353, subnet_id='sub')),
    ('listener', dict(id='http', loadbalancer_id='lb', protocol='HTTP',
                      protocol_port=80, default_pool_id='pool',
                      unique_key=40)),
    ('member', dict(id='m-vm2', pool_id='pool', address='10.0.0.6',
                    protocol_port=8080, subnet_id='sub', weight=2)),
    ('member', dict(id='m-vm3', pool_id='pool', address='10.0.1.7',
                    protocol_port=8080, subnet_id='sub2')),
    ('member', dict(id='m-vm1', pool_id='pool', address='10.0.0.5',
                    protocol_port=8080, subnet_id='sub',
                    admin_state_up=False)),
    # Firewall: vm1 in a group with both policies (drops logged); router
    # interface rp2 (net2, where vm3 has no security groups) filters what
    # net2 sends.
    ('firewall_rule', dict(id='fw-ssh', protocol='tcp',
                           source_ip_address='10.0.0.0/8',
                           destination_port='22', action='allow')),
    ('firewall_rule', dict(id='fw-dns', protocol='udp',
                           destination_port='53', action='reject')),
    ('firewall_rule', dict(id='fw-range', protocol='tcp',
                           source_port='1000:1999', action='deny')),
    ('firewall_rule', dict(id='fw-off', protocol='icmp', action='allow',
                           enabled=False)),
    ('firewall_rule', dict(id='fw-v6', ip_version=6, protocol='icmp',
                           destination_ip_address='fd00:1::/64',
                           action='allow')),
    ('firewall_rule', dict(id='fw-out', action='allow')),
    ('firewall_policy', dict(id='fw-in', firewall_rules=[
        'fw-ssh', 'fw-dns', 'fw-range', 'fw-off', 'fw-v6'])),
    ('firewall_policy', dict(id='fw-egress', firewall_rules=['fw-out'])),
    ('firewall_group', dict(id='fwg', unique_key=50, ports=['vm1'],
                            ingress_firewall_policy_id='fw-in',
                            egress_firewall_policy_id='fw-egress',
                            log='drop')),
    ('firewall_group', dict(id='edge', unique_key=51, ports=['rp2'],
                            egress_firewall_policy_id='fw-in')),
    # Tap: vm1 mirrored both ways to sf-in (local), and what it receives
    # before its security groups to mon2 (on ch2); the trunk parent's
    # VLAN 10 (its subport) as sent, before security groups.
    ('logical_port', dict(id='mon2', network_id='net', unique_key=21,
                          ips=['10.0.0.21'], macs=[mac(21)],
                          binding_chassis='ch2',
                          port_security_enabled=False)),
    ('tap_service', dict(id='ts', port_id='sf-in', unique_key=60)),
    ('tap_service', dict(id='ts2', port_id='mon2', unique_key=61)),
    ('tap_flow', dict(id='tf-vm1', tap_service_id='ts', source_port='vm1')),
    ('tap_flow', dict(id='tf-vm1-in', tap_service_id='ts2',
                      source_port='vm1', direction='IN',
                      position='before-sg')),
    ('tap_flow', dict(id='tf-trunk', tap_service_id='ts',
                      source_port='parent', direction='OUT',
                      vlan_filter='10', position='before-sg')),
    # Multicast (snooping on net and net2, relayed by r): 239.1.1.1
    # joined by vm1 here and mon2 on ch2, and by vm3 on net2; ff15::1
    # only on ch2.
    membership('ch1', 'net', '239.1.1.1', ['vm1']),
    membership('ch2', 'net', '239.1.1.1', ['mon2']),
    membership('ch2', 'net', 'ff15::1', ['mon2']),
    membership('ch1', 'net2', '239.1.1.1', ['vm3']),
]
OFPORTS = {'vm1': 1, 'vm3': 3, 'parent': 4, 'sf-in': 6, 'sf-out': 7,
           'pv1': 8}
LOCAL_PORTS = ('vm1', 'vm3', 'parent', 'child', 'sf-in', 'sf-out', 'pv1')


def objects():
    return [obj(table, **data) for table, data in OBJECTS]


def state():
    """The world as chassis ch1 sees it, with the gateway MAC learned."""
    s = LocalState('ch1')
    for o in objects():
        s.put(o)
    s.ofports.update(OFPORTS)
    s.tunnel_ofports.update({'geneve': 20, 'vxlan': 21})
    s.provider_ofports['physnet1'] = 30
    s.neighbours[('public', '172.24.4.1')] = 'aa:bb:cc:00:00:01'
    return s


def controller(s):
    """What apps read of the controller outside flow computation."""
    return types.SimpleNamespace(state=s, programmed=set(
        s.programmed_networks()), post=lambda kind, payload: None)
