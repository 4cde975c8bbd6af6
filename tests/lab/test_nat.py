"""Distributed SNAT and floating IPs with real packets: an upstream router
(a namespace) on a VLAN external network; VMs behind a router leave
through their own chassis, translated to that chassis' external address,
or to their floating IP, which the outside also reaches them by."""
import pytest

from lab_harness.netlab import EXTERNAL_CIDR, EXTERNAL_GATEWAY, PHYSNET
from test_l2 import pings
from waiting import wait_until

EXTERNAL_VLAN = 200


@pytest.fixture(scope='module')
def upstream(lab, lab_nb):
    """The external network and the upstream router (its gateway)."""
    net = lab_nb.create('logical_switch', {
        'name': 'public', 'network_type': 'vlan', 'external': True,
        'physical_network': PHYSNET, 'segmentation_id': EXTERNAL_VLAN})
    lab_nb.create('subnet', {'network_id': net.id, 'cidr': EXTERNAL_CIDR,
                             'gateway_ip': EXTERNAL_GATEWAY,
                             'enable_dhcp': False})
    host = lab.add_external('up')
    host.add_address(f'{EXTERNAL_GATEWAY}/24', vlan=EXTERNAL_VLAN)
    host.network = net
    servers = [host.serve_tcp(port) for port in (8080, 8081)]
    yield host
    for proc in servers:
        proc.kill()
        proc.wait()
    host.destroy()
    lab.vms.pop('up', None)
    lab_nb.delete('logical_switch', net.id, cascade=True)


def _routed(topo, lab_nb, upstream, cidr, vms):
    """A tenant network behind a router with its gateway on the external
    network, and VMs on the given chassis with it as default route."""
    net = topo.network(cidr)
    router = topo.router(f'r-{cidr}', [net], external_gateway={
        'network_id': upstream.network.id})
    subnet = lab_nb.list('subnet', network_id=net.id)[0]
    out = []
    for chassis in vms:
        vm = topo.vm(net, chassis)
        vm.run('ip', 'route', 'add', 'default', 'via', subnet.gateway_ip)
        out.append(vm)
    return router, out


def _source_seen(vm, port=8080, timeout=20):
    """The source address the upstream router sees from vm."""
    seen = []

    def connected():
        seen.append(vm.connect_tcp(EXTERNAL_GATEWAY, port))
        return seen[-1] is not None
    wait_until(connected, timeout, interval=0.5,
               message=f'{vm.name} reaches the upstream router')
    return seen[-1]


def test_snat_leaves_through_each_vms_own_chassis(topo, lab, lab_nb,
                                                  upstream):
    _, (a, b) = _routed(topo, lab_nb, upstream, '10.71.0.0/24',
                        ['ch1', 'ch2'])
    assert _source_seen(a) == lab.chassis['ch1'].external_ip
    assert _source_seen(b) == lab.chassis['ch2'].external_ip
    assert pings(a, EXTERNAL_GATEWAY)
    # Nobody outside can open a connection to a VM without a FIP.
    assert not upstream.ping(a.ip, timeout=1)


def test_floating_ip_in_and_out_and_reassociation(topo, lab, lab_nb,
                                                  upstream):
    _, (c, d) = _routed(topo, lab_nb, upstream, '10.72.0.0/24',
                        ['ch2', 'ch1'])
    fip = lab_nb.create('floating_ip', {
        'floating_network_id': upstream.network.id,
        'port_id': c.port_id})
    address = fip.floating_ip_address
    # Outbound: the VM leaves as its floating IP, once ch2 has programmed
    # it (a connection made before that leaves by SNAT, as before).
    wait_until(lambda: _source_seen(c, 8081) == address, 10,
               message=f'{c.name} leaves as {address}')
    # Inbound: the outside reaches the VM through it (DNAT only: the
    # VM sees the real client).
    assert pings(upstream, address)
    topo.serve(c, 9000)
    wait_until(lambda: upstream.connect_tcp(address, 9000) ==
               EXTERNAL_GATEWAY, 10, message='upstream -> FIP -> c')
    # Re-associated to d (on the other chassis): it moves there, and c
    # is back to SNAT through its chassis.
    lab_nb.patch('floating_ip', fip.id, {'port_id': d.port_id,
                                         'fixed_ip_address': d.ip})
    topo.serve(d, 9001)
    wait_until(lambda: upstream.connect_tcp(address, 9001) ==
               EXTERNAL_GATEWAY, 15, message='upstream -> FIP -> d')
    assert _source_seen(d, 8081) == address
    assert _source_seen(c, 8081) == lab.chassis['ch2'].external_ip


def test_trace_names_a_floating_ip_of_an_unbound_port(topo, lab_nb, upstream,
                                                      dfctl_verdict):
    _, (a,) = _routed(topo, lab_nb, upstream, '10.76.0.0/24', ['ch1'])
    ghost = lab_nb.create('logical_port', {
        'network_id': a.port.network_id, 'name': 'ghost'})     # not plugged
    fip = lab_nb.create('floating_ip', {
        'floating_network_id': upstream.network.id, 'port_id': ghost.id})
    try:
        code, out = dfctl_verdict('trace', '--from', a.port.id, '--to',
                                  fip.floating_ip_address, '--physical')
        assert code == 1
        last = out['logical']['steps'][-1]
        assert last['stage'] == 'ingress_nat' and last['text'].endswith(
            'of port ghost (%s), which is bound to no chassis: no chassis '
            'answers ARP for it' % ghost.id)
        # ch1 sends it out to the external network, as the model says;
        # there the physical walk ends (no disagreement).
        assert out['physical'][0]['result']['outcome']['kind'] == 'provider'
        assert out['disagreement'] is None
        assert not a.ping(fip.floating_ip_address, count=2)
        assert not upstream.ping(fip.floating_ip_address, timeout=1)
    finally:
        lab_nb.delete('floating_ip', fip.id)
        lab_nb.delete('logical_port', ghost.id)
