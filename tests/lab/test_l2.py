"""L2 through the agent, with real packets: switching on one chassis and
across chassis over Geneve and VXLAN, isolation, DHCP, the ARP responder,
port security, port deletion, restarts."""
import re
import signal
import subprocess
import time

import pytest

from topology import tunnel_capture
from waiting import wait_until


def pings(vm, ip, timeout=20):
    """Ping until it answers (the first packet over a tunnel waits for the
    underlay ARP); True if it ever did."""
    try:
        wait_until(lambda: vm.ping(ip, count=1, timeout=1), timeout,
                   interval=0.2, message=f'{vm.name} -> {ip}')
        return True
    except AssertionError:
        return False


@pytest.mark.parametrize('network_type', ['geneve', 'vxlan'])
def test_ping_on_one_chassis_and_across_chassis(topo, network_type):
    net = topo.network('10.11.0.0/24', network_type)
    vm1 = topo.vm(net, 'ch1')
    vm2 = topo.vm(net, 'ch1')
    vm3 = topo.vm(net, 'ch2')
    assert pings(vm1, vm2.ip)
    assert pings(vm1, vm3.ip)
    assert pings(vm3, vm2.ip)


def test_three_chassis_full_mesh(topo):
    net = topo.network('10.12.0.0/24')
    vms = [topo.vm(net, ch) for ch in ('ch1', 'ch2', 'ch3')]
    for a in vms:
        for b in vms:
            if a is not b:
                assert pings(a, b.ip), f'{a.name} -> {b.name}'


def test_no_traffic_between_different_networks(topo):
    # Same CIDR on both networks: only the network separates them.
    red = topo.network('10.13.0.0/24')
    blue = topo.network('10.13.0.0/24', network_type='vxlan')
    red1 = topo.vm(red, 'ch1', ips=['10.13.0.10'])
    red2 = topo.vm(red, 'ch2', ips=['10.13.0.11'])
    blue1 = topo.vm(blue, 'ch1', ips=['10.13.0.20'])
    assert pings(red1, red2.ip)
    assert not red1.ping(blue1.ip, count=3, timeout=1)
    assert not blue1.ping(red2.ip, count=3, timeout=1)


def test_dhcp_gives_the_nb_address(topo):
    net = topo.network('10.14.0.0/24')
    vm = topo.vm(net, 'ch2', static_ip=False)
    topo.wait_bound(vm)
    assert vm.dhcp(timeout=10) == vm.ip
    routes = vm.run('ip', 'route')
    assert 'default via 10.14.0.1' in routes
    other = topo.vm(net, 'ch1')
    assert pings(vm, other.ip)


def test_arp_for_a_remote_port_is_answered_locally(topo, lab):
    net = topo.network('10.15.0.0/24')
    vm1 = topo.vm(net, 'ch1')
    vm2 = topo.vm(net, 'ch2')
    assert pings(vm1, vm2.ip)
    vm1.run('ip', 'neigh', 'flush', 'dev', 'eth0')
    reached, out = tunnel_capture(
        lab, lambda: vm1.ping(vm2.ip, count=2, timeout=1))
    assert reached
    assert 'ICMP echo request' in out
    assert 'ARP' not in out
    assert 'lladdr' in vm1.run('ip', 'neigh', 'show', vm2.ip)


def packets(chassis, flow_filter):
    """n_packets summed over the flows of chassis' br-int matching a
    filter (ovs-ofctl syntax)."""
    out = chassis.ofctl('dump-flows', 'br-int', flow_filter)
    return sum(int(n) for n in re.findall(r'n_packets=(\d+)', out))


def test_geneve_carries_the_destination_port_key(topo, lab):
    """Over Geneve the receiver takes the port key from the option: its
    table-0 flow for the key counts the packets, the destination-MAC
    lookup (table 100) sees none of them; the option is on the wire."""
    net = topo.network('10.19.0.0/24')
    vm1 = topo.vm(net, 'ch1')
    vm2 = topo.vm(net, 'ch2')
    ch2 = lab.chassis['ch2']
    key = vm2.port.unique_key
    assert pings(vm1, vm2.ip)
    before = packets(ch2, f'table=0,tun_metadata0={key}')
    reached, out = tunnel_capture(
        lab, lambda: vm1.ping(vm2.ip, count=5, interval=0.2, timeout=1),
        verbose=True)
    assert reached
    assert packets(ch2, f'table=0,tun_metadata0={key}') >= before + 5
    assert packets(ch2, f'table=100,dl_dst={vm2.mac}') == 0
    # tcpdump shows the option's class and its 4 data bytes: the key.
    assert re.search(r'0x102\) type 0x80\S* len 8 data '
                     f'{key:08x}', out), out


def test_spoofed_mac_and_ip_are_dropped_allowed_pairs_pass(topo):
    net = topo.network('10.16.0.0/24')
    target = topo.vm(net, 'ch2')
    vm = topo.vm(net, 'ch1', allowed_address_pairs=[
        {'ip_address': '10.16.0.200'}])
    assert pings(vm, target.ip)
    # Spoofed source IP: not the port's, not an allowed pair.
    vm.run('ip', 'addr', 'add', '10.16.0.99/32', 'dev', 'eth0')
    assert not vm.run('ping', '-c', '2', '-W', '1', '-I', '10.16.0.99',
                      target.ip, check=False).count(' 0% packet loss')
    # An allowed address pair passes.
    vm.run('ip', 'addr', 'add', '10.16.0.200/32', 'dev', 'eth0')
    target.run('ip', 'route', 'add', '10.16.0.200/32', 'dev', 'eth0')
    out = vm.run('ping', '-c', '3', '-W', '1', '-I', '10.16.0.200',
                 target.ip, check=False)
    assert re.search(r' [0-6]?[0-9]?\.?[0-9]*% packet loss', out) and \
        '100% packet loss' not in out
    # Spoofed source MAC.
    vm.run('ip', 'link', 'set', 'eth0', 'address', 'fa:16:3e:66:66:66')
    vm.run('ip', 'neigh', 'flush', 'dev', 'eth0')
    assert not vm.ping(target.ip, count=3, timeout=1)


def test_port_security_off_lets_anything_through(topo):
    net = topo.network('10.17.0.0/24')
    target = topo.vm(net, 'ch2')
    vm = topo.vm(net, 'ch1', port_security_enabled=False)
    assert pings(vm, target.ip)
    vm.run('ip', 'addr', 'add', '10.17.0.99/32', 'dev', 'eth0')
    target.run('ip', 'route', 'add', '10.17.0.99/32', 'dev', 'eth0')
    out = vm.run('ping', '-c', '3', '-W', '1', '-I', '10.17.0.99', target.ip,
                 check=False)
    assert '100% packet loss' not in out


def _names_key(flow, key):
    """The flow line carries the port key as a whole value (0xb, not the
    start of 0xb1 or the end of 0x1b)."""
    return re.search(rf'(?<![0-9a-fx]){hex(key)}(?![0-9a-f])', flow) \
        is not None


def _port_flows(chassis, port):
    return [f for f in chassis.flows() if _names_key(f, port.unique_key) or
            any(re.search(rf'\b{mac}\b', f) for mac in port.macs)]


def test_deleting_a_port_stops_traffic_and_removes_its_flows(topo, lab,
                                                             lab_nb):
    net = topo.network('10.18.0.0/24')
    vm1 = topo.vm(net, 'ch1')
    vm2 = topo.vm(net, 'ch2')
    assert pings(vm1, vm2.ip)
    port = lab_nb.get('logical_port', vm2.port_id)
    assert _port_flows(lab.chassis['ch1'], port)
    lab_nb.delete('logical_port', vm2.port_id)
    for name in ('ch1', 'ch2'):
        wait_until(lambda: not _port_flows(lab.chassis[name], port),
                   message=f'flows of the deleted port gone from {name}')
    assert not vm1.ping(vm2.ip, count=2, timeout=1)


def test_unknown_iface_id_is_bound_when_the_port_appears(topo, lab, lab_nb):
    net = topo.network('10.19.0.0/24')
    other = topo.vm(net, 'ch2')
    port = lab_nb.create('logical_port', {'network_id': net.id,
                                          'name': 'late'})
    lab_nb.delete('logical_port', port.id)
    vm = lab.add_vm('late', lab.chassis['ch1'], port)   # plugged, not in NB
    topo.vms.append(vm)
    assert not vm.ping(other.ip, count=1, timeout=1)
    lab_nb.create('logical_port', port.to_dict())
    wait_until(lambda: lab_nb.get('logical_port', port.id).binding_chassis
               == 'ch1', message='late port bound')
    assert pings(vm, other.ip)


def _strip(flows):
    return sorted(re.sub(r'cookie=0x[0-9a-f]+, ', '', f) for f in flows)


def test_flows_after_kill_change_restart_equal_a_fresh_agents(topo, lab,
                                                              lab_nb):
    ch = lab.chassis['ch3']
    net = topo.network('10.20.0.0/24')
    keep = topo.vm(net, 'ch3')
    gone = topo.vm(net, 'ch3')
    topo.vm(net, 'ch1')
    topo.wait_bound(gone)
    ch.stop_controller(signal.SIGKILL)
    # While it is down: a port deleted in NB, the classifier's flows
    # deleted and a stray flow added by hand. The restarted agent reads
    # the switch's flows and sends only the difference (flowdump).
    lab_nb.delete('logical_port', gone.port_id)
    ch.ofctl('del-flows', 'br-int', 'table=0')
    ch.ofctl('add-flow', 'br-int',
             "cookie=0x100000001,table=0,priority=7,in_port=999,"
             'actions=drop')
    ch.start_controller()
    ch.wait_connected()
    kept = re.findall(r'full sync done: .* (\d+) kept as the switch had '
                      r'them, (\d+) messages sent', ch.controller_log())[-1]
    assert int(kept[0]) > 0 and int(kept[1]) > 0, kept
    wait_until(lambda: not any(_names_key(f, gone.port.unique_key)
                               for f in ch.flows()), message='stale flows gone')
    time.sleep(1)
    restarted = _strip(ch.flows())
    assert not any('in_port=999' in f for f in restarted)
    ch.stop_controller()
    ch.ofctl('del-flows', 'br-int')
    ch.start_controller()
    ch.wait_connected()
    wait_until(lambda: _strip(ch.flows()) == restarted, timeout=20,
               message='fresh agent has the same flows')
    assert pings(keep, topo.vms[2].ip)


@pytest.mark.parametrize('topic', ['', 'tenant-restart'])
def test_agent_restart_loses_no_packets(topo, lab, topic):
    """Also with a topic the restarted agent must first find (through its
    local ports) and read before its first full sync."""
    net = topo.network('10.21.0.0/24', topic=topic)
    vm1 = topo.vm(net, 'ch1', topic=topic)
    vm2 = topo.vm(net, 'ch2', topic=topic)
    assert pings(vm1, vm2.ip)
    ping = subprocess.Popen(['ip', 'netns', 'exec', vm1.ns, 'ping', '-i',
                             '0.1', '-c', '60', '-W', '1', vm2.ip],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    for name in ('ch1', 'ch2'):
        lab.chassis[name].stop_controller()
        lab.chassis[name].start_controller()
    for name in ('ch1', 'ch2'):
        lab.chassis[name].wait_connected()
    out = ping.communicate(timeout=60)[0]
    assert ' 0% packet loss' in out, out[-300:]


def test_a_deleted_controller_is_put_back(topo, lab):
    """``ovs-vsctl del-controller br-int`` empties the bridge (OVS 3.1,
    fail_mode secure): the running agent sees it through its OVSDB monitor,
    sets itself again and refills the flows; the traffic gap is bounded
    (under 2 s of a 10 ms ping). With the agent stopped only its return
    restores them."""
    net = topo.network('10.23.0.0/24')
    vm1 = topo.vm(net, 'ch1')
    vm2 = topo.vm(net, 'ch2')
    assert pings(vm1, vm2.ip)
    ch = lab.chassis['ch1']
    before = _strip(ch.flows())
    ping = subprocess.Popen(['ip', 'netns', 'exec', vm1.ns, 'ping', '-q',
                             '-i', '0.01', '-W', '1', vm2.ip],
                            stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        ch.vsctl('del-controller', 'br-int')
        wait_until(lambda: _strip(ch.flows()) == before, timeout=20,
                   interval=0.05, message='flows back after del-controller')
        time.sleep(1)
    finally:
        ping.send_signal(signal.SIGINT)
        out = ping.communicate(timeout=30)[0]
    summary = next(x for x in out.splitlines() if 'transmitted' in x)
    sent, received = int(summary.split()[0]), int(summary.split()[3])
    assert sent - received < 200, summary
    assert ch.vsctl('get-controller', 'br-int').split() == [
        'tcp:127.0.0.1:6653']


def test_ovs_restart_is_reprogrammed(topo, lab):
    net = topo.network('10.22.0.0/24')
    vm1 = topo.vm(net, 'ch1')
    vm2 = topo.vm(net, 'ch2')
    assert pings(vm1, vm2.ip)
    before = _strip(lab.chassis['ch2'].flows())
    lab.chassis['ch2'].restart_vswitchd()
    wait_until(lambda: _strip(lab.chassis['ch2'].flows()) == before,
               timeout=30, message='flows back after the OVS restart')
    assert pings(vm1, vm2.ip)


def test_routed_ping_between_networks_on_different_chassis(topo, lab_nb):
    """Distributed routing: the source chassis routes (one tunnel hop) and
    the TTL goes down by one."""
    red = topo.network('10.41.0.0/24')
    blue = topo.network('10.42.0.0/24', network_type='vxlan')
    router = topo.router('r-test', [red, blue])
    a = topo.vm(red, 'ch1')
    b = topo.vm(blue, 'ch2')
    c = topo.vm(blue, 'ch1')
    for vm, gateway in ((a, '10.41.0.1'), (b, '10.42.0.1'),
                        (c, '10.42.0.1')):
        vm.run('ip', 'route', 'add', 'default', 'via', gateway)
    assert pings(a, b.ip)               # routed, across chassis
    assert pings(a, c.ip)               # routed, on one chassis
    assert pings(b, a.ip)
    assert 'ttl=63' in a.run('ping', '-c', '1', '-W', '1', b.ip)
    lab_nb.delete('logical_router', router.id, cascade=True)
    wait_until(lambda: not a.ping(b.ip, count=1, timeout=1),
               message='no route once the router is gone')


def test_extra_route_via_a_vm_next_hop(topo, lab_nb):
    """A router's extra route sends a prefix to a VM acting as a router."""
    red = topo.network('10.43.0.0/24')
    blue = topo.network('10.44.0.0/24')
    router = topo.router('r-extra', [red, blue])
    client = topo.vm(red, 'ch1')
    # The next hop owns 192.168.77.1 behind it; it may send from it.
    hop = topo.vm(blue, 'ch2', allowed_address_pairs=[
        {'ip_address': '192.168.77.0/24'}])
    client.run('ip', 'route', 'add', 'default', 'via', '10.43.0.1')
    hop.run('ip', 'route', 'add', 'default', 'via', '10.44.0.1')
    hop.run('ip', 'addr', 'add', '192.168.77.1/32', 'dev', 'lo')
    assert not client.ping('192.168.77.1', count=1, timeout=1)
    lab_nb.patch('logical_router', router.id, {'routes': [
        {'destination': '192.168.77.0/24', 'nexthop': hop.ip}]})
    assert pings(client, '192.168.77.1')


# Last: it stops the lab's ZooKeeper for a while.
def test_zookeeper_outage_keeps_forwarding_then_catches_up(topo, lab,
                                                           lab_nb):
    net = topo.network('10.23.0.0/24')
    vm1 = topo.vm(net, 'ch1')
    vm2 = topo.vm(net, 'ch2')
    assert pings(vm1, vm2.ip)
    lab.zk.kill()
    try:
        # Forwarding goes on from the installed flows.
        time.sleep(2)
        assert vm1.ping(vm2.ip, count=5, timeout=1)
    finally:
        lab.zk.start().wait_ready()
    # The agents reconnect and follow changes made after the outage.
    late = topo.vm(net, 'ch1')
    assert pings(late, vm2.ip, timeout=40)
    assert pings(vm2, late.ip)
