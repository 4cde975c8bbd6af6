"""Multicast with IGMP/MLD snooping, real packets: a sender on ch1,
receivers on ch2 and ch3 whose kernels join with the socket API; only
the chassis with members get the stream (a capture of ch3's underlay sees
no tunnel packet of it), a local receiver gets it without the tunnel,
leaves stop it (v3 at once, v2 after the last-member query), a host that
stops answering the querier is aged out, VMs never see each other's
reports, security groups filter groups, MLD works the same for IPv6, and
unregistered groups are dropped unless the network floods them."""
import signal
import subprocess
import time

import pytest

from dragonflow.model import multicast as mcm
from lab_harness.multicast_hosts import Receiver, send, silent_report
from topology import static_ipv6, tunnel_capture
from waiting import wait_until

GROUP, GROUP6 = '239.1.2.3', 'ff15::1:3'
# Short timers so aging shows within seconds: a member that does not
# report within 2 x 3 + 1 = 7 s goes.
FAST = dict(multicast_snooping=True, multicast_query_interval=3,
            multicast_query_response=1, multicast_robustness=2,
            multicast_last_member_interval=1)


@pytest.fixture
def receivers():
    made = []

    def make(vm, group=GROUP):
        made.append(Receiver(vm, group))
        return made[-1]
    yield make
    for receiver in made:
        receiver.stop()


def members(nb, network, group=GROUP):
    """{chassis: member port ids} of the group in NB."""
    return {r.chassis: set(r.ports) for r in nb.list(mcm.TABLE)
            if r.network_id == network.id and r.address == group}


def tunnel_copies(lab, action, group):
    """{chassis: tunnel packets of the group sent to it} during action."""
    _, seen = tunnel_capture(lab, action)
    out = {}
    for name, chassis in lab.chassis.items():
        count = sum(1 for line in seen.splitlines()
                    if f'> {chassis.ip}.6081' in line and
                    f'> {group}.' in line)
        if count:
            out[name] = count
    return out


def stream_reaches(sender, receiver, tag, group=GROUP, count=10):
    """Send a burst and say whether the receiver got most of it."""
    send(sender, group, tag, count=count)
    deadline = time.monotonic() + 1
    while len(receiver.got(tag)) < count // 2 and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    return len(receiver.got(tag)) >= count // 2


def test_only_chassis_with_members_get_the_stream(topo, lab, lab_nb,
                                                   receivers):
    net = topo.network('10.91.0.0/24', **FAST)
    sender = topo.vm(net, 'ch1')
    near = topo.vm(net, 'ch1')
    joined = topo.vm(net, 'ch2')
    idle = topo.vm(net, 'ch3')
    r_joined, r_idle, r_near = (receivers(vm) for vm in (joined, idle, near))
    r_joined.join()
    wait_until(lambda: members(lab_nb, net).get('ch2') == {joined.port.id},
               10, message='ch2 records its member')
    wait_until(lambda: stream_reaches(sender, r_joined, 'a'), 15,
               interval=0.2, message='the joined receiver gets the stream')
    copies = tunnel_copies(lab, lambda: send(sender, GROUP, 'b', count=20),
                           GROUP)
    assert copies == {'ch2': 20}, 'one copy per packet to ch2, none to ch3'
    assert r_idle.got('a') == r_idle.got('b') == []
    assert r_near.got('b') == []
    # A second receiver on the sender's chassis joins: it gets the stream
    # there, and ch3 still gets nothing.
    r_near.join()
    wait_until(lambda: stream_reaches(sender, r_near, 'c'), 15,
               interval=0.2, message='the local receiver gets the stream')
    assert len(r_joined.got('c')) >= 5
    assert r_idle.got('c') == []


def _stops(sender, receiver, tag, group=GROUP):
    """The receiver gets nothing of a burst sent now."""
    send(sender, group, tag, count=10)
    time.sleep(0.3)
    return receiver.got(tag) == []


def test_leaves_stop_the_stream_v3_at_once_v2_after_the_group_query(
        topo, lab_nb, receivers):
    net = topo.network('10.92.0.0/24', **FAST)
    sender = topo.vm(net, 'ch1')
    v3 = topo.vm(net, 'ch2')
    v2 = topo.vm(net, 'ch3')
    v2.run('sysctl', '-qw', 'net.ipv4.conf.eth0.force_igmp_version=2')
    r3, r2 = receivers(v3), receivers(v2)
    r3.join()
    r2.join()
    wait_until(lambda: stream_reaches(sender, r3, 'a') and
               len(r2.got('a')) >= 5, 15, interval=0.2,
               message='both receivers get the stream')
    # IGMPv3 TO_IN({}): the port goes at once.
    r3.leave()
    start = time.monotonic()
    wait_until(lambda: _stops(sender, r3, f'b{time.monotonic()}'), 3,
               interval=0, message='the v3 receiver\'s stream stops')
    assert time.monotonic() - start < 3
    assert ch_members(lab_nb, net) == {'ch3'}
    # IGMPv2 leave: a group-specific query nobody answers, and after
    # robustness (2) x last member interval (1 s) the port goes.
    r2.leave()
    start = time.monotonic()
    wait_until(lambda: _stops(sender, r2, f'c{time.monotonic()}'), 6,
               interval=0, message='the v2 receiver\'s stream stops')
    assert time.monotonic() - start < 2 + 2.5
    wait_until(lambda: ch_members(lab_nb, net) == set(), 5,
               message='no member left in NB')


def ch_members(nb, network, group=GROUP):
    return {c for c, ports in members(nb, network, group).items() if ports}


def test_a_silent_member_ages_out_and_a_live_one_stays(topo, lab_nb,
                                                       receivers):
    net = topo.network('10.93.0.0/24', **FAST)
    sender = topo.vm(net, 'ch1')
    silent = topo.vm(net, 'ch2')
    live = topo.vm(net, 'ch3')
    receiver = receivers(live)
    receiver.join()
    silent_report(silent, GROUP)
    wait_until(lambda: ch_members(lab_nb, net) == {'ch2', 'ch3'}, 10,
               message='both reports recorded')
    seen = time.monotonic()
    # Group membership interval: 2 x 3 + 1 = 7 s; the live receiver's
    # kernel answers the queries meanwhile, the silent one cannot.
    wait_until(lambda: ch_members(lab_nb, net) == {'ch3'}, 15,
               message='the silent member aged out')
    assert time.monotonic() - seen > 5
    assert stream_reaches(sender, receiver, 'a')


def captures(vms, expression, action, options=()):
    """(action()'s result, [what each vm's tcpdump saw meanwhile])."""
    procs = [subprocess.Popen(['ip', 'netns', 'exec', vm.ns, 'tcpdump',
                               '-l', '-nn', *options, '-i', 'eth0',
                               expression],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
             for vm in vms]
    try:
        time.sleep(1)
        result = action()
        time.sleep(0.5)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
    return result, [proc.communicate(timeout=10)[0] for proc in procs]


def test_vms_never_see_each_others_reports(topo, lab_nb, receivers):
    net = topo.network('10.94.0.0/24', **FAST)
    joiner = topo.vm(net, 'ch1')
    neighbour = topo.vm(net, 'ch1')
    remote = topo.vm(net, 'ch2')
    receiver = receivers(joiner)

    def join_and_leave():
        receiver.join()
        wait_until(lambda: ch_members(lab_nb, net) == {'ch1'}, 10,
                   message='the agent heard the report')
        time.sleep(1)
        receiver.leave()
        time.sleep(1)
        return True
    _, seen = captures([neighbour, remote, joiner],
                       f'igmp and src host {joiner.ip}', join_and_leave)
    near, far, own = seen
    assert 'igmp' in own.lower()        # the reports were sent
    assert near.strip() == far.strip() == ''


def test_security_groups_filter_a_group(topo, lab_nb, receivers):
    net = topo.network('10.95.0.0/24', **FAST)
    ping_only = topo.security_group('mc-ping-only', {
        'direction': 'ingress', 'ethertype': 'IPv4', 'protocol': 'icmp'})
    sender = topo.vm(net, 'ch1')
    guarded = topo.vm(net, 'ch2', security_groups=[ping_only.id])
    receiver = receivers(guarded)
    receiver.join()
    wait_until(lambda: ch_members(lab_nb, net) == {'ch2'}, 10,
               message='the guarded receiver joined')
    for tag in ('a', 'b', 'c'):
        assert not stream_reaches(sender, receiver, tag)
    lab_nb.create('security_group_rule', {
        'security_group_id': ping_only.id, 'direction': 'ingress',
        'ethertype': 'IPv4', 'protocol': 'udp', 'port_range_min': 5007,
        'port_range_max': 5007})
    wait_until(lambda: stream_reaches(sender, receiver,
                                      f'd{time.monotonic()}'), 15,
               interval=0.2, message='a UDP rule lets the group in')


def test_mld_snooping_for_ipv6(topo, lab, lab_nb, receivers):
    net = topo.network('10.96.0.0/24', **FAST)
    lab_nb.create('subnet', {'network_id': net.id, 'cidr': 'fd00:96::/64',
                             'topic': net.topic})
    sender, joined, idle = (static_ipv6(topo.vm(net, ch))
                            for ch in ('ch1', 'ch2', 'ch3'))
    r_joined, r_idle = receivers(joined, GROUP6), receivers(idle, GROUP6)
    r_joined.join()
    wait_until(lambda: ch_members(lab_nb, net, GROUP6) == {'ch2'}, 10,
               message='the MLD report recorded')
    wait_until(lambda: stream_reaches(sender, r_joined, 'a', GROUP6), 15,
               interval=0.2, message='the IPv6 stream reaches the member')
    copies = tunnel_copies(lab, lambda: send(sender, GROUP6, 'b',
                                             count=20), GROUP6)
    assert copies == {'ch2': 20}
    assert r_idle.got('a') == r_idle.got('b') == []
    # MLDv2 leave (TO_IN {}): at once.
    r_joined.leave()
    wait_until(lambda: ch_members(lab_nb, net, GROUP6) == set(), 5,
               message='the MLD leave recorded')


def test_unregistered_groups_dropped_unless_the_network_floods_them(
        topo, lab_nb, receivers):
    net = topo.network('10.97.0.0/24', **FAST)
    sender = topo.vm(net, 'ch1')
    listener = topo.vm(net, 'ch2')

    def burst():
        send(sender, '239.9.9.9', 'u', count=5)
        return True

    def heard():
        return '239.9.9.9' in captures([listener], 'udp', burst)[1][0]
    assert not heard()
    lab_nb.patch('logical_switch', net.id,
                 {'multicast_flood_unregistered': True})
    wait_until(heard, 15, interval=0, message='flooded once allowed')
    lab_nb.patch('logical_switch', net.id,
                 {'multicast_flood_unregistered': False,
                  'multicast_snooping': False})
    # Snooping off: today's behaviour, everything flooded.
    wait_until(heard, 15, interval=0, message='flooded without snooping')


def test_a_relaying_router_forwards_a_group_between_its_subnets(
        topo, lab, lab_nb, receivers):
    a = topo.network('10.98.0.0/24', **FAST)
    b = topo.network('10.99.0.0/24', **FAST)
    router = topo.router('mc-relay', [a, b], multicast_relay=True)
    sender = topo.vm(a, 'ch1')
    near, far, idle = (topo.vm(b, ch) for ch in ('ch1', 'ch2', 'ch3'))
    r_near, r_far, r_idle = (receivers(vm) for vm in (near, far, idle))
    r_near.join()
    r_far.join()
    wait_until(lambda: stream_reaches(sender, r_far, 'b') and
               len(r_near.got('b')) >= 5, 15, interval=0.2,
               message='members on the other subnet get the stream')
    # Routed once: the TTL the sender set (4) is down by one, the source
    # MAC is the router's.
    rport = next(p for p in lab_nb.list('logical_router_port',
                                        router_id=router.id)
                 if p.network_id == b.id)
    _, (seen,) = captures([far], f'dst {GROUP}', lambda: send(
        sender, GROUP, 'c', count=3), options=('-v', '-e'))
    assert 'ttl 3' in seen and rport.mac in seen, seen
    copies = tunnel_copies(lab, lambda: send(sender, GROUP, 'd', count=20),
                           GROUP)
    assert copies == {'ch2': 20}
    assert r_idle.got('b') == r_idle.got('d') == []
    # TTL 1 (Linux's default for multicast): not routed.
    send(sender, GROUP, 'ttl1', count=10, ttl=1)
    time.sleep(0.5)
    assert r_far.got('ttl1') == r_near.got('ttl1') == []
    lab_nb.patch('logical_router', router.id, {'multicast_relay': False})
    wait_until(lambda: _stops(sender, r_far, f'e{time.monotonic()}'), 10,
               interval=0, message='no relay once switched off')
