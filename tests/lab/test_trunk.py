"""Trunk ports (VLAN-aware VMs) with real packets: a VM's VLAN interface
reaches the subport's network (on its chassis and across chassis), its
untagged interface stays on the parent's network, subports come and go at
run time, port security and security groups apply to the subport, and DHCP
answers the subport (not its parent) on its VLAN."""
from test_l2 import pings
from waiting import wait_until


def test_subport_traffic_is_tagged_and_switched_in_its_own_network(
        topo, lab_nb):
    parent_net = topo.network('10.91.0.0/24')
    child_net = topo.network('10.92.0.0/24', network_type='vxlan')
    trunk_vm = topo.trunk_vm(parent_net, 'ch1')
    child = topo.subport(trunk_vm, child_net, 100)
    near = topo.vm(child_net, 'ch1')
    far = topo.vm(child_net, 'ch2')
    plain = topo.vm(parent_net, 'ch2')
    assert pings(trunk_vm, far.ip), 'eth100 -> subport network, other chassis'
    assert pings(trunk_vm, near.ip), 'eth100 -> subport network, same chassis'
    assert pings(far, child.ips[0])
    assert pings(trunk_vm, plain.ip), 'eth0 stays on the parent network'
    # The child network is not reachable untagged.
    assert not trunk_vm.ping(far.ip, timeout=1, interface='eth0')
    wait_until(lambda: lab_nb.get('logical_port', child.id).binding_chassis
               == 'ch1', 10, message='subport bound with its parent')


def test_subports_come_and_go_at_run_time(topo, lab_nb):
    parent_net = topo.network('10.93.0.0/24')
    net_a = topo.network('10.94.0.0/24')
    net_b = topo.network('10.95.0.0/24')
    trunk_vm = topo.trunk_vm(parent_net, 'ch2')
    a_peer = topo.vm(net_a, 'ch1')
    b_peer = topo.vm(net_b, 'ch1')
    sub_a = topo.subport(trunk_vm, net_a, 200)
    assert pings(trunk_vm, a_peer.ip)
    sub_b = topo.subport(trunk_vm, net_b, 300)
    assert pings(trunk_vm, b_peer.ip)
    lab_nb.delete('child_port_segmentation', sub_a.segment.id)
    wait_until(lambda: not trunk_vm.ping(a_peer.ip, timeout=1), 10,
               message='removed subport no longer reaches its network')
    assert pings(trunk_vm, b_peer.ip), 'the other subport is untouched'
    del sub_b


def test_security_group_applies_to_the_subport(topo, lab_nb):
    parent_net = topo.network('10.96.0.0/24')
    child_net = topo.network('10.97.0.0/24')
    group = lab_nb.create('security_group', {'name': 'sub-sg'})
    lab_nb.create('security_group_rule', {'security_group_id': group.id,
                                          'direction': 'egress'})
    trunk_vm = topo.trunk_vm(parent_net, 'ch1')
    child = topo.subport(trunk_vm, child_net, 400,
                         security_groups=[group.id])
    peer = topo.vm(child_net, 'ch2')
    try:
        assert pings(trunk_vm, peer.ip), 'egress allowed, replies pass'
        assert not any(peer.ping(child.ips[0], timeout=1) for _ in range(3)), \
            'no ingress rule: the subport is closed'
    finally:
        topo.cleanup()
        lab_nb.delete('security_group', group.id, cascade=True)


def test_dhcp_answers_the_subport_on_its_vlan(topo):
    """A subport's DHCP request arrives on its parent's interface; the
    agent tells them apart by the source port key and leases the subport's
    address on eth<vlan>."""
    parent_net = topo.network('10.98.0.0/24')
    child_net = topo.network('10.99.0.0/24')
    trunk_vm = topo.trunk_vm(parent_net, 'ch1')
    child = topo.subport(trunk_vm, child_net, 500)
    peer = topo.vm(child_net, 'ch2')
    trunk_vm.run('ip', 'addr', 'flush', 'dev', 'eth500')
    wait_until(lambda: trunk_vm.dhcp(interface='eth500') == child.ips[0], 30,
               message='the subport leased its address')
    assert pings(trunk_vm, peer.ip)
