"""Tap as a service with real packets: tcpdump on a monitoring VM sees the
source VM's ping and TCP both ways, IN only and OUT only, on another
chassis than the source and on the same one; the source's own traffic
still flows; a VLAN filter on a trunk port keeps only those VLANs;
before-sg copies show what the security groups drop, after-sg ones do
not; deleting the tap flow stops the copies; ``dfctl tap capture``
writes a pcap and leaves nothing behind, also when killed."""
import os
import signal
import subprocess
import time

import pytest

from dragonflow import errors
from test_l2 import pings
from topology import tcpdump_during
from waiting import wait_until


def capture(vm, action, expression='icmp or tcp port 8080',
            interface='eth0'):
    """(action()'s result, what vm's tcpdump saw meanwhile, as text with
    link-level headers)."""
    return tcpdump_during(['ip', 'netns', 'exec', vm.ns, 'tcpdump', '-l',
                           '-nn', '-e', '-i', interface, expression], action)


def _ping(src, dst, count=2):
    return lambda: src.ping(dst.ip, count=count, timeout=1, interval=0.2)


@pytest.fixture
def taps(lab_nb, topo):
    """Creates tap services and flows; removes them before the ports."""
    made = []

    class Taps:
        def service(self, vm):
            made.append(lab_nb.create('tap_service', {'port_id': vm.port.id}))
            return made[-1]

        def flow(self, service, source, **fields):
            made.append(lab_nb.create('tap_flow', dict(
                fields, tap_service_id=service.id,
                source_port=source.port.id)))
            return made[-1]

        def delete(self, obj):
            lab_nb.delete(obj.table, obj.id)
            made.remove(obj)
    yield Taps()
    for obj in reversed(made):
        try:
            lab_nb.delete(obj.table, obj.id)
        except errors.NotFound:
            pass
    topo.cleanup()


def _seen(out, src, dst, kind):
    return f'{src.ip} > {dst.ip}: ICMP echo {kind}' in out


def _copies(monitor, action, src, dst):
    """(requests src -> dst, replies dst -> src) monitor saw during
    action."""
    ok, out = capture(monitor, action)
    assert ok
    return _seen(out, src, dst, 'request'), _seen(out, dst, src, 'reply')


def test_both_in_and_out_to_a_remote_and_a_local_service(topo, taps):
    net = topo.network('10.81.0.0/24')
    source = topo.vm(net, 'ch1')
    peer = topo.vm(net, 'ch2')
    remote = topo.vm(net, 'ch2', port_security_enabled=False)
    local = topo.vm(net, 'ch1', port_security_enabled=False)
    assert pings(source, peer.ip)
    # Nothing is copied before a tap flow exists.
    assert _copies(remote, _ping(source, peer), source, peer) == \
        (False, False)
    service = taps.service(remote)
    both = taps.flow(service, source)
    wait_until(lambda: _copies(remote, _ping(source, peer), source, peer)
               == (True, True), 20, interval=0.5,
               message='both directions copied to the remote service')
    # The source's own traffic flows as before: no loss.
    out = subprocess.run(['ip', 'netns', 'exec', source.ns, 'ping', '-q',
                          '-c', '50', '-i', '0.02', peer.ip],
                         capture_output=True, text=True).stdout
    assert ' 0% packet loss' in out, out
    # TCP too.
    topo.serve(peer, 8080)
    answer, out = capture(remote, lambda: source.connect_tcp(peer.ip, 8080))
    assert answer == source.ip
    assert f'{source.ip}.' in out and f'> {peer.ip}.8080' in out
    assert f'{peer.ip}.8080 > {source.ip}.' in out
    # One source into a second service, on the source's own chassis,
    # only what it receives.
    inbound = taps.flow(taps.service(local), source, direction='IN')
    wait_until(lambda: _copies(local, _ping(source, peer), source, peer)
               == (False, True), 20, interval=0.5,
               message='IN only copied to the local service')
    # OUT only.
    taps.delete(both)
    taps.flow(service, source, direction='OUT')
    wait_until(lambda: _copies(remote, _ping(source, peer), source, peer)
               == (True, False), 20, interval=0.5,
               message='OUT only copied to the remote service')
    # Deleting the flows stops the copies.
    taps.delete(inbound)
    wait_until(lambda: _copies(local, _ping(source, peer), source, peer)
               == (False, False), 20, interval=0.5,
               message='no copy once the flow is gone')


def test_before_sg_copies_show_what_the_groups_drop(topo, taps):
    net = topo.network('10.82.0.0/24')
    closed = topo.security_group('tap-closed', {'direction': 'egress'})
    source = topo.vm(net, 'ch1', security_groups=[closed.id])
    peer = topo.vm(net, 'ch2')
    monitor = topo.vm(net, 'ch2', port_security_enabled=False)
    service = taps.service(monitor)
    after = taps.flow(service, source, direction='IN')

    def peer_pings():
        return not peer.ping(source.ip, count=2, timeout=1, interval=0.2)
    # The group drops peer's pings: an after-sg copy never shows them.
    time.sleep(2)
    _, out = capture(monitor, peer_pings)
    assert not _seen(out, peer, source, 'request'), out
    taps.delete(after)
    taps.flow(service, source, direction='IN', position='before-sg')
    wait_until(lambda: _seen(capture(monitor, peer_pings)[1], peer,
                             source, 'request'), 20, interval=0.5,
               message='a before-sg copy shows the dropped ping')


def test_vlan_filter_on_a_trunk_port(topo, taps):
    parent_net = topo.network('10.83.0.0/24')
    nets = {vlan: topo.network(f'10.83.{vlan // 100}.0/24')
            for vlan in (100, 200)}
    trunk = topo.trunk_vm(parent_net, 'ch1')
    peers = {}
    for vlan, net in nets.items():
        topo.subport(trunk, net, vlan)
        peers[vlan] = topo.vm(net, 'ch2')
        assert pings(trunk, peers[vlan].ip)
    monitor = topo.vm(parent_net, 'ch2', port_security_enabled=False)
    taps.flow(taps.service(monitor), trunk, vlan_filter='100')

    def both_vlans():
        return all(trunk.ping(peers[v].ip, count=2, timeout=1, interval=0.2)
                   for v in (100, 200))

    def only_vlan_100():
        _, out = capture(monitor, both_vlans)
        return 'vlan 100' in out and f'> {peers[100].ip}: ICMP' in out \
            and f'{peers[200].ip}' not in out
    wait_until(only_vlan_100, 20, interval=0.5,
               message='only VLAN 100 copied, with its tag')


def _capture_cmd(lab, chassis, *args):
    argv, env = lab.chassis[chassis].dfctl_command('tap', 'capture', *args)
    return subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _leftovers(lab, lab_nb):
    """Capture ports, services, tap flows in NB; capture ports and copy
    flows in OVS (the agents take a moment to remove the flows)."""
    def copy_flows():
        return [f for ch in lab.chassis.values() for f in ch.flows()
                if 'reg10=' in f or 'resubmit(,120)' in f]
    wait_until(lambda: not copy_flows(), 10, interval=0.2,
               message='copy flows gone')
    return ([p.name for p in lab_nb.list('logical_port')
             if p.device_owner == 'tap-capture'],
            lab_nb.list('tap_service'), lab_nb.list('tap_flow'),
            [p for ch in lab.chassis.values()
             for p in ch.vsctl('list-ports', 'br-int').split()
             if p.startswith('tapc')])


def test_dfctl_tap_capture_writes_a_pcap_and_leaves_nothing(
        topo, lab, lab_nb):
    net = topo.network('10.84.0.0/24')
    source = topo.vm(net, 'ch1')
    peer = topo.vm(net, 'ch2')
    assert pings(source, peer.ip)
    pcap = os.path.join(lab.dir, 'capture.pcap')
    # On another chassis than the source's: the copies cross the tunnel.
    proc = _capture_cmd(lab, 'ch2', source.port.id, '-w', pcap,
                        '--count', '10')
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        source.ping(peer.ip, count=2, timeout=1, interval=0.2)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    read = subprocess.run(['tcpdump', '-nn', '-r', pcap], capture_output=True,
                          text=True, check=True).stdout.splitlines()
    assert len(read) == 10, read
    assert any(f'{source.ip} > {peer.ip}: ICMP echo request' in line
               for line in read), read
    assert _leftovers(lab, lab_nb) == ([], [], [], [])
    # Killed with SIGTERM while capturing: everything goes too.
    proc = _capture_cmd(lab, 'ch1', source.port.id)
    wait_until(lambda: lab_nb.list('tap_flow'), 30, interval=0.2,
               message='the capture started')
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert _leftovers(lab, lab_nb) == ([], [], [], [])
