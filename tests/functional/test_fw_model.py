"""Firewall (FWaaS v2) objects in the NB (real ZooKeeper): bad input is
refused with the field named and nothing written; dfctl orders a
policy's rules with insert-rule/remove-rule."""
import json

import pytest

from dragonflow import errors
from test_nb_api import assert_refused, snapshot


@pytest.fixture
def fw(nb):
    net = nb.create('logical_switch', {'name': 'fw-net'})
    subnet = nb.create('subnet', {'network_id': net.id,
                                  'cidr': '10.0.0.0/24'})
    vm = nb.create('logical_port', {'network_id': net.id, 'name': 'vm'})
    foreign = nb.create('logical_port', {'network_id': net.id,
                                         'topic': 'another-project'})
    router = nb.create('logical_router', {'name': 'r'})
    rport = nb.create('logical_router_port', {'router_id': router.id,
                                              'subnet_id': subnet.id})
    ssh = nb.create('firewall_rule', {'name': 'ssh', 'protocol': 'tcp',
                                      'destination_port': '22',
                                      'action': 'allow'})
    web = nb.create('firewall_rule', {'name': 'web', 'protocol': 'tcp',
                                      'destination_port': '80:81',
                                      'action': 'allow'})
    policy = nb.create('firewall_policy', {'name': 'p',
                                           'firewall_rules': [ssh.id]})
    return dict(vm=vm, foreign=foreign, rport=rport, ssh=ssh, web=web,
                policy=policy)


CASES = [
    ('a reversed port range', 'firewall_rule',
     lambda o: {'protocol': 'tcp', 'destination_port': '90:80'},
     'destination_port: 90:80: the range is reversed'),
    ('ports without tcp or udp', 'firewall_rule',
     lambda o: {'protocol': 'icmp', 'source_port': '80'},
     'source_port: protocol icmp has no ports'),
    ('ports on any protocol', 'firewall_rule',
     lambda o: {'destination_port': '80'}, 'protocol any has no ports'),
    ('an IPv4 prefix on an IPv6 rule', 'firewall_rule',
     lambda o: {'ip_version': 6, 'source_ip_address': '10.0.0.0/24'},
     'source_ip_address: 10.0.0.0/24 is IPv4, the rule IPv6'),
    ('a port number out of range', 'firewall_rule',
     lambda o: {'protocol': 'udp', 'destination_port': '70000'},
     'ports are 1-65535'),
    ('a port range that does not parse', 'firewall_rule',
     lambda o: {'protocol': 'udp', 'destination_port': '80-90'},
     'destination_port: does not match'),
    ('a rule twice in a policy', 'firewall_policy',
     lambda o: {'firewall_rules': [o['ssh'].id, o['web'].id, o['ssh'].id]},
     'firewall_rules: has a duplicate item'),
    ('a policy with a missing rule', 'firewall_policy',
     lambda o: {'firewall_rules': ['ghost']},
     'firewall_rule ghost does not exist'),
    ('a group on a port of another project', 'firewall_group',
     lambda o: {'ports': [o['foreign'].id]}, 'belongs to another project'),
    ('a group on something that is no port', 'firewall_group',
     lambda o: {'ports': ['ghost']},
     'ghost is neither a port nor a router interface'),
    ('an unknown action', 'firewall_rule',
     lambda o: {'action': 'drop'}, 'action: must be one of allow'),
]


@pytest.mark.parametrize('what, table, data, message', CASES,
                         ids=[c[0] for c in CASES])
def test_bad_firewall_input_is_refused_and_nothing_written(
        nb, fw, what, table, data, message):
    assert_refused(nb, table, data(fw), message)


def test_groups_on_vm_and_router_ports_one_group_per_port(nb, fw):
    group = nb.create('firewall_group', {
        'ports': [fw['vm'].id, fw['rport'].id],
        'ingress_firewall_policy_id': fw['policy'].id})
    assert group.status == 'ACTIVE'
    before = snapshot(nb)
    with pytest.raises(errors.UniqueConflict):
        nb.create('firewall_group', {'ports': [fw['vm'].id]})
    # A rule in use cannot go.
    with pytest.raises(errors.StillReferenced):
        nb.delete('firewall_rule', fw['ssh'].id)
    assert snapshot(nb) == before


def test_dfctl_orders_a_policys_rules(nb, fw, dfctl):
    def rules():
        return nb.get('firewall_policy', fw['policy'].id).firewall_rules
    nb.patch('firewall_policy', fw['policy'].id, {'audited': True})
    dfctl('firewall-policy', 'insert-rule', 'p', 'web', '--before', 'ssh')
    assert rules() == [fw['web'].id, fw['ssh'].id]
    # Changing the rules clears audited.
    assert nb.get('firewall_policy', fw['policy'].id).audited is False
    dfctl('firewall-policy', 'remove-rule', 'p', 'web')
    out = dfctl('--json', 'firewall-policy', 'insert-rule', 'p', 'web',
                '--after', 'ssh').stdout
    assert json.loads(out)['firewall_rules'] == [fw['ssh'].id, fw['web'].id]
    bad = dfctl('firewall-policy', 'insert-rule', 'p', 'web', expect=1)
    assert 'is already in policy' in bad.stderr
    bad = dfctl('firewall-policy', 'remove-rule', 'p', 'ghost', expect=1)
    assert 'rule ghost is not in policy' in bad.stderr
    dfctl('firewall-group', 'create', '--name', 'g', '--ports',
          fw['vm'].id, '--egress-firewall-policy-id', 'p', '--log', 'drop')
    group = json.loads(dfctl('--json', 'firewall-group', 'show', 'g').stdout)
    assert group['log'] == 'drop' and group['status'] == 'ACTIVE'
