"""Pure model validation: typed fields, normalisation, cross-field rules."""
import pytest

from dragonflow.errors import ValidationError
from dragonflow.model import base
from dragonflow.model.bgp import BgpPeer
from dragonflow.model.floating_ip import FloatingIP
from dragonflow.model.logical_port import LogicalPort
from dragonflow.model.logical_switch import LogicalSwitch
from dragonflow.model.security_group import SecurityGroup
from dragonflow.model.security_group import SecurityGroupRule
from dragonflow.model.subnet import Subnet


def refused(match, fn, *args, **kwargs):
    with pytest.raises(ValidationError, match=match):
        fn(*args, **kwargs)


def test_every_required_table_is_registered():
    assert {'chassis', 'logical_switch', 'subnet', 'logical_port',
            'logical_router', 'logical_router_port', 'floating_ip',
            'security_group', 'security_group_rule', 'bgp_speaker',
            'bgp_peer', 'service'} <= set(base.tables())


def test_every_object_has_id_and_topic_and_a_version_slot():
    net = LogicalSwitch(name='n')
    assert net.id and net.topic == '' and net.version is None


def test_unknown_field_is_refused_by_name():
    refused(r"logical_switch: unknown field 'colour'", LogicalSwitch,
            colour='red')


def test_wrong_type_names_the_field():
    refused(r'logical_switch.mtu: must be an integer', LogicalSwitch,
            mtu='big')
    refused(r'logical_switch.external: must be true or false', LogicalSwitch,
            external='yes')


def test_addresses_are_validated_and_normalised():
    port = LogicalPort(network_id='n', macs=['FA:16:3E:00:00:01'],
                       ips=['2001:db8:0:0::5'])
    assert port.macs == ['fa:16:3e:00:00:01']
    assert port.ips == ['2001:db8::5']
    refused(r'logical_port.ips\[0\]: is not a valid IP', LogicalPort,
            network_id='n', ips=['10.0.0.300'])
    refused(r'logical_port.macs\[0\]: must be a unicast', LogicalPort,
            network_id='n', macs=['01:00:5e:00:00:01'])
    refused(r'subnet.cidr: is not a valid CIDR', Subnet, network_id='n',
            cidr='10.0.0.1/24')


def test_nested_structs_validate_their_own_fields():
    refused(r'logical_port.allowed_address_pairs\[0\].mac_address', LogicalPort,
            network_id='n', allowed_address_pairs=[
                {'ip_address': '10.0.0.9', 'mac_address': 'nope'}])
    refused(r"unknown field 'port'", LogicalPort, network_id='n',
            allowed_address_pairs=[{'ip_address': '10.0.0.9', 'port': 1}])


def test_network_segmentation_rules():
    refused(r'physical_network: is required for vlan', LogicalSwitch(
        network_type='vlan', segmentation_id=10).validate)
    refused(r'segmentation_id: 5000 is out of range 1..4094', LogicalSwitch(
        network_type='vlan', physical_network='phys',
        segmentation_id=5000).validate)
    vlan = LogicalSwitch(network_type='vlan', physical_network='phys',
                         segmentation_id=10)
    assert ('segment', 'vlan:phys:10') in vlan.unique_keys()


def test_subnet_gateway_must_be_inside_and_not_the_network_address():
    refused(r'gateway_ip: 10.0.1.1 is not in 10.0.0.0/24', Subnet(
        network_id='n', cidr='10.0.0.0/24', gateway_ip='10.0.1.1').validate)
    refused(r'network or broadcast', Subnet(
        network_id='n', cidr='10.0.0.0/24', gateway_ip='10.0.0.255').validate)
    refused(r'host_routes\[0\].nexthop: must be IPv4', Subnet(
        network_id='n', cidr='10.0.0.0/24', host_routes=[
            {'destination': '10.1.0.0/16', 'nexthop': '2001:db8::1'}]).validate)


def test_security_group_rule_ranges_and_protocols():
    def rule(**kw):
        return SecurityGroupRule(security_group_id='sg', direction='ingress',
                                 **kw)
    refused(r'protocol: unknown protocol', rule, protocol='tcpp')
    refused(r'port_range_min: 90 is above port_range_max 80',
            rule(protocol='tcp', port_range_min=90, port_range_max=80).validate)
    refused(r'protocol: is required with a port range',
            rule(port_range_min=1, port_range_max=2).validate)
    refused(r'remote_ip_prefix: 2001:db8::/32 does not match ethertype IPv4',
            rule(remote_ip_prefix='2001:db8::/32').validate)
    assert rule(protocol='6').protocol == 'tcp'
    assert rule(remote_ip_prefix='10.0.0.5/8').remote_ip_prefix == '10.0.0.0/8'


def test_security_group_keys_fit_the_conjunction_ids():
    refused(r'security_group.unique_key: must be <= 16777215',
            SecurityGroup, unique_key=2 ** 24)
    assert SecurityGroup(unique_key=2 ** 24 - 1).unique_key == 2 ** 24 - 1


def test_ipv6_subnet_modes():
    base_v6 = {'network_id': 'n', 'cidr': '2001:db8::/64'}
    Subnet.from_dict(dict(base_v6, ipv6_ra_mode='slaac',
                          ipv6_address_mode='slaac')).validate()
    refused('needs a /64', lambda: Subnet.from_dict(dict(
        base_v6, cidr='2001:db8::/56', ipv6_address_mode='slaac'))
        .validate())
    refused('differs from ipv6_ra_mode', lambda: Subnet.from_dict(dict(
        base_v6, ipv6_ra_mode='slaac',
        ipv6_address_mode='dhcpv6-stateful')).validate())
    refused('only valid on IPv6', lambda: Subnet.from_dict({
        'network_id': 'n', 'cidr': '10.0.0.0/24',
        'ipv6_ra_mode': 'slaac'}).validate())


def test_floating_ips_are_ipv4_only():
    refused(r'IPv6 is not NATed', FloatingIP(
        floating_network_id='ext', floating_ip_address='2001:db8::5').validate)


def test_bgp_peer_as_number_range():
    refused(r'bgp_peer.remote_as: must be <= 4294967295', BgpPeer,
            peer_ip='10.0.0.1', remote_as=2 ** 32)
    refused(r'bgp_peer.peer_ip: is not a valid IP', BgpPeer,
            peer_ip='10.0.0', remote_as=65000)


def test_json_round_trip_and_references():
    port = LogicalPort(network_id='net', security_groups=['sg1', 'sg2'],
                       binding_chassis='ch1', ips=['10.0.0.5'])
    again = LogicalPort.from_json(port.to_json(), version=3)
    assert again == port and again.version == 3
    assert set(port.references()) == {('logical_switch', 'net', True),
                                      ('security_group', 'sg1', True),
                                      ('security_group', 'sg2', True),
                                      ('chassis', 'ch1', False)}
    refused(r'stored body is not JSON', LogicalPort.from_json, b'{oops')


def test_cli_parsing_of_lists_and_structs():
    field = LogicalPort.fields()['allowed_address_pairs']
    value = field.parse('ip_address=10.0.0.9,mac_address=fa:16:3e:00:00:09;'
                        'ip_address=10.0.1.0/24', 'p')
    assert value == [{'ip_address': '10.0.0.9',
                      'mac_address': 'fa:16:3e:00:00:09'},
                     {'ip_address': '10.0.1.0/24'}]
    assert LogicalPort.fields()['ips'].parse('10.0.0.1, 10.0.0.2', 'p') == [
        '10.0.0.1', '10.0.0.2']
    refused(r'has a duplicate item', LogicalPort.fields()['ips'].parse,
            '10.0.0.1,10.0.0.1', 'p')


@pytest.mark.parametrize('cidr,message', [
    ('10.0.0.0/33', 'prefix length 33 is out of range for IPv4: 0-32'),
    ('2001:db8::/129', 'prefix length 129 is out of range for IPv6: 0-128'),
    ('10.0.0.1/24', 'host bits set: the network is 10.0.0.0/24'),
    ('10.0.0.0/x', 'the prefix length is not a number'),
    ('nonsense/24', 'the address part is not an address'),
])
def test_a_bad_cidr_says_what_is_wrong_with_it(cidr, message):
    with pytest.raises(ValidationError) as e:
        base.model_for('subnet').from_dict({'network_id': 'n', 'cidr': cidr})
    assert message in str(e.value)


def test_a_huge_value_is_not_echoed_back_whole():
    with pytest.raises(ValidationError) as e:
        base.model_for('logical_switch').from_dict({'name': 'x' * 10 ** 7})
    assert len(str(e.value)) < 200
    assert str(e.value).endswith("... (10000000 characters)")


@pytest.mark.parametrize('name', ['two\nlines', 'tab\there', 'bell\x07'])
def test_control_characters_in_names_are_refused(name):
    with pytest.raises(ValidationError,
                       match='must not contain control characters'):
        base.model_for('logical_switch').from_dict({'name': name})
