"""The L3 flavour on a chassis (apps_list = the L3 set, l2_normal instead
of our L2 pipeline), with real packets: its VMs sit on two VLAN provider
networks as access ports switched by the bridge's NORMAL action; they
route to each other and to a full-flavour chassis through the agent,
leave by SNAT, are reached by a floating IP, and the chassis carries no
L2/DHCP/ARP-responder flows of ours."""
import pytest

from dragonflow.controller import apps
from lab_harness.netlab import PHYSNET
from test_l2 import pings
from test_nat import EXTERNAL_GATEWAY, _source_seen, upstream  # noqa: F401
from waiting import wait_until

# Cookies of the full set's L2 apps.
L2_COOKIES = {apps.load([name] + (['security_groups'] if name == 'fwaas'
                                  else []))[0].cookie
              for name in apps.OWN_L2}


@pytest.fixture(scope='module')
def l3_chassis(lab):
    chassis = lab.chassis['ch3']
    chassis.stop_controller()
    chassis.start_controller({'apps_list': ','.join(apps.L3_FLAVOUR)})
    chassis.wait_connected()
    yield chassis
    chassis.stop_controller()
    chassis.start_controller()
    chassis.wait_connected()


def _vlan_vm(topo, lab, net, chassis, vlan, gateway):
    vm = topo.vm(net, chassis)
    if chassis == 'ch3':
        # Plugged as an access port of its VLAN, as an L2 agent would.
        lab.chassis[chassis].vsctl('set', 'Port', vm.tap, f'tag={vlan}')
    vm.run('ip', 'route', 'add', 'default', 'via', gateway)
    return vm


def test_l3_flavour_routes_nats_and_leaves_l2_to_normal(
        topo, lab, lab_nb, l3_chassis, upstream):  # noqa: F811
    nets = {}
    for vlan, cidr in ((101, '10.81.0.0/24'), (102, '10.82.0.0/24')):
        nets[vlan] = topo.network(cidr, network_type='vlan',
                                  physical_network=PHYSNET,
                                  segmentation_id=vlan)
    topo.router('r-l3', list(nets.values()), external_gateway={
        'network_id': upstream.network.id})
    a = _vlan_vm(topo, lab, nets[101], 'ch3', 101, '10.81.0.1')
    b = _vlan_vm(topo, lab, nets[102], 'ch3', 102, '10.82.0.1')
    c = _vlan_vm(topo, lab, nets[102], 'ch1', 102, '10.82.0.1')
    assert pings(a, b.ip), 'routed on the L3 chassis'
    assert pings(a, c.ip), 'routed to a full-flavour chassis'
    assert pings(b, c.ip), 'same VLAN: NORMAL and the physical network'
    assert 'ttl=63' in a.run('ping', '-c', '1', '-W', '2', b.ip)
    assert _source_seen(a) == l3_chassis.external_ip
    fip = lab_nb.create('floating_ip', {
        'floating_network_id': upstream.network.id, 'port_id': b.port_id})
    topo.serve(b, 9100)
    wait_until(lambda: upstream.connect_tcp(fip.floating_ip_address,
                                            9100) == EXTERNAL_GATEWAY,
               15, message='upstream -> FIP -> b on the L3 chassis')
    assert _source_seen(b, 8081) == fip.floating_ip_address
    ours = [line for line in l3_chassis.flows()
            if int(line.split('cookie=')[1].split(',')[0], 16) & 0xff
            in L2_COOKIES]
    assert ours == []
    # Table 0 (ovs-ofctl leaves table=0 out) hands the rest to NORMAL.
    assert any(line.endswith('actions=NORMAL') and 'table=' not in line
               for line in l3_chassis.flows())
