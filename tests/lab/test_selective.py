"""Selective distribution on real chassis: a chassis programs (and reads)
only the topics of its local ports (and what is shared); plugging a port of
another topic makes it follow that topic, and removing the last one makes
it forget it. Ports of different topics on a shared network reach each
other."""
import time

from waiting import wait_until

from test_l2 import pings


def knows(chassis, vm):
    """Whether any of chassis' flows names vm's MAC."""
    return any(vm.mac in line for line in chassis.flows())


def test_a_chassis_follows_only_its_local_ports_topics(topo, lab, lab_nb):
    ch1, ch3 = lab.chassis['ch1'], lab.chassis['ch3']
    red = topo.network('10.41.0.0/24', topic='tenant-red')
    blue = topo.network('10.42.0.0/24', topic='tenant-blue')
    red1 = topo.vm(red, 'ch1', topic='tenant-red')
    red2 = topo.vm(red, 'ch2', topic='tenant-red')
    blue1 = topo.vm(blue, 'ch2', topic='tenant-blue')
    blue2 = topo.vm(blue, 'ch3', topic='tenant-blue')
    assert pings(red1, red2.ip)
    assert pings(blue1, blue2.ip)
    assert knows(ch1, red2) and not knows(ch1, blue1)
    assert knows(ch3, blue1) and not knows(ch3, red1)

    # A blue port arrives on ch1: ch1 now follows blue too.
    blue3 = topo.vm(blue, 'ch1', topic='tenant-blue')
    assert pings(blue3, blue2.ip) and pings(blue3, blue1.ip)
    assert knows(ch1, blue2)

    # ...and forgets it when that port goes.
    blue3.unplug()
    lab_nb.delete('logical_port', blue3.port_id)
    wait_until(lambda: not knows(ch1, blue2), 15,
               message='ch1 forgot the blue topic')
    assert pings(red1, red2.ip)


def test_tenants_ports_on_a_shared_network_reach_each_other(topo, lab):
    ch1 = lab.chassis['ch1']
    common = topo.network('10.43.0.0/24')
    blue = topo.network('10.44.0.0/24', topic='tenant-blue')
    red1 = topo.vm(common, 'ch1', topic='tenant-red')
    blue1 = topo.vm(common, 'ch3', topic='tenant-blue')
    blue2 = topo.vm(blue, 'ch3', topic='tenant-blue')
    assert pings(red1, blue1.ip) and pings(blue1, red1.ip)
    assert knows(ch1, blue1) and not knows(ch1, blue2)


def test_a_port_plugged_while_zookeeper_is_down_is_followed_after(
        topo, lab, lab_nb):
    """The new topic's feed cannot be read during the outage; the agent
    follows it once ZooKeeper is back, and the port works."""
    net = topo.network('10.45.0.0/24', topic='tenant-late')
    peer = topo.vm(net, 'ch2', topic='tenant-late')
    port = lab_nb.create('logical_port', {'network_id': net.id,
                                          'name': 'late',
                                          'topic': 'tenant-late'})
    late = lab.add_vm('late', lab.chassis['ch1'], port, plug=False)
    late.port, late.ip = port, port.ips[0]
    topo.vms.append(late)
    lab.zk.kill()
    try:
        late.plug()
        time.sleep(2)
    finally:
        lab.zk.start().wait_ready()
    assert pings(late, peer.ip, timeout=40)
    assert pings(peer, late.ip)
