"""Stateful security groups with real packets through conntrack: default
deny ingress, allow by remote prefix and by remote group, replies of
allowed connections pass, removing a rule stops new connections; broadcast
is filtered like unicast."""
import subprocess
import time

import pytest

from dragonflow import errors
from waiting import wait_until


def _group(nb, name, egress=True):
    group = nb.create('security_group', {'name': name})
    if egress:
        _rule(nb, group, 'egress')
    return group


def _rule(nb, group, direction, **fields):
    return nb.create('security_group_rule', dict(
        security_group_id=group.id, direction=direction, **fields))


def _answers(vm, ip):
    return vm.ping(ip, count=1, timeout=1)


def _blocked(vm, ip, tries=3):
    return not any(vm.ping(ip, count=1, timeout=1) for _ in range(tries))


@pytest.fixture
def groups(topo, lab_nb):
    """Creates groups; removes them after the test's ports."""
    created = []

    def make(name, egress=True):
        created.append(_group(lab_nb, name, egress))
        return created[-1]
    yield make
    topo.cleanup()
    for group in created:
        try:
            lab_nb.delete('security_group', group.id, cascade=True)
        except errors.NotFound:
            pass


def test_default_deny_ingress_allow_by_prefix_and_rule_removal(
        topo, lab_nb, groups):
    net = topo.network('10.51.0.0/24')
    web = groups('web')
    a = topo.vm(net, 'ch1', security_groups=[web.id])
    b = topo.vm(net, 'ch2')             # no groups: not filtered
    c = topo.vm(net, 'ch1')
    # Egress is allowed and its replies come back (stateful)...
    wait_until(lambda: _answers(a, b.ip), 20, message='a -> b')
    # ...but nothing may open a connection to a.
    assert _blocked(b, a.ip) and _blocked(c, a.ip)
    rule = _rule(lab_nb, web, 'ingress', protocol='icmp',
                 remote_ip_prefix=f'{b.ip}/32')
    wait_until(lambda: _answers(b, a.ip), 10, message='allowed by prefix')
    assert _blocked(c, a.ip), 'c is outside the prefix'
    lab_nb.delete('security_group_rule', rule.id)
    wait_until(lambda: _blocked(b, a.ip, tries=1), 10,
               message='rule removed: new pings dropped')


def test_remote_group_and_established_tcp_return(topo, lab_nb, groups):
    net = topo.network('10.52.0.0/24')
    clients = groups('clients')
    servers = groups('servers', egress=False)    # may not open anything
    _rule(lab_nb, servers, 'ingress', protocol='tcp', port_range_min=8080,
          port_range_max=8080, remote_group_id=clients.id)
    others = groups('others')
    server = topo.vm(net, 'ch1', security_groups=[servers.id])
    client = topo.vm(net, 'ch2', security_groups=[clients.id])
    near = topo.vm(net, 'ch1', security_groups=[clients.id])
    stranger = topo.vm(net, 'ch2', security_groups=[others.id])
    proc = server.serve_tcp(8080)
    try:
        # The server's answer travels back although its group has no
        # egress rule: it belongs to a connection the client opened.
        wait_until(lambda: client.connect_tcp(server.ip, 8080) == client.ip,
                   20, message='client in the remote group connects')
        assert near.connect_tcp(server.ip, 8080) == near.ip
        assert stranger.connect_tcp(server.ip, 8080) is None
        assert _blocked(server, client.ip), 'servers may not open anything'
        # Membership is live: moving the stranger into the group lets it in.
        lab_nb.patch('logical_port', stranger.port_id,
                     {'security_groups': [clients.id]})
        wait_until(lambda: stranger.connect_tcp(server.ip, 8080) ==
                   stranger.ip, 10, message='new member connects')
    finally:
        proc.kill()
        proc.wait()


def test_a_rule_applies_to_its_groups_ports_only(topo, lab, lab_nb,
                                                   groups):
    """Plain rules are conjunctions of "port in the group" and "this
    service": a rule of group one opens its service on a only, adds one
    flow and changes no port's flows; a packet that a's clause of group
    one matches but no plain rule allows still reaches the remote-group
    rules below (the conjunction falls through to lower priorities)."""
    net = topo.network('10.53.0.0/24')
    one, two = groups('one'), groups('two')
    _rule(lab_nb, one, 'ingress', protocol='udp', port_range_min=53,
          port_range_max=53)
    _rule(lab_nb, one, 'ingress', protocol='icmp', remote_group_id=two.id)
    a = topo.vm(net, 'ch1', security_groups=[one.id])
    b = topo.vm(net, 'ch1', security_groups=[two.id])
    c = topo.vm(net, 'ch2')             # no groups: not filtered
    chassis = lab.chassis['ch1']

    def port_flows():
        keys = {lab_nb.get('logical_port', vm.port_id).unique_key
                for vm in (a, b)}
        return {line for line in _dump(chassis, (105, 110))
                if any(f'reg7=0x{key:x}' in line for key in keys)}
    wait_until(lambda: _answers(b, a.ip), 20,
               message='b, in the remote group, pings a')
    assert _blocked(c, a.ip), 'c is in no group of a\'s ICMP rule'
    before = port_flows()
    _rule(lab_nb, one, 'ingress', protocol='tcp', port_range_min=8022,
          port_range_max=8022)
    servers = [a.serve_tcp(8022), b.serve_tcp(8022)]
    try:
        wait_until(lambda: c.connect_tcp(a.ip, 8022) == c.ip, 10,
                   message='rule of group one opens a')
        assert c.connect_tcp(b.ip, 8022) is None, 'b is not in group one'
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
    assert port_flows() == before
    assert any('tp_dst=8022' in line and 'conjunction(' in line and
               'reg7=' not in line for line in _dump(chassis, (110,)))


def _dump(chassis, tables):
    out = []
    for table in tables:
        text = chassis.ofctl('dump-flows', 'br-int', f'table={table}',
                             '--no-stats')
        out += [line.strip() for line in text.splitlines()
                if 'table=' in line]
    return out


RECEIVE = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('', 9999))
s.settimeout(3)
try:
    print(s.recvfrom(100)[0].decode())
except socket.timeout:
    pass
"""
SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.sendto(b'hello', (sys.argv[1], 9999))
"""


def broadcast_receivers(sender, vms, address):
    """The VMs that receive a UDP broadcast from sender."""
    procs = {vm.ip: subprocess.Popen(
        ['ip', 'netns', 'exec', vm.ns, 'python3', '-c', RECEIVE],
        stdout=subprocess.PIPE, text=True) for vm in vms}
    time.sleep(0.5)
    for _ in range(3):
        sender.run('python3', '-c', SEND, address)
        time.sleep(0.2)
    return {ip for ip, proc in procs.items()
            if 'hello' in proc.communicate(timeout=10)[0]}


def test_broadcast_reaches_a_port_only_as_its_groups_allow(topo, lab_nb,
                                                          groups):
    """Flooded copies go through each receiving port's ingress stages, on
    the sender's chassis and across a tunnel."""
    net = topo.network('10.52.0.0/24')
    web = groups('web')
    sender = topo.vm(net, 'ch1')
    unguarded = topo.vm(net, 'ch1')
    guarded = topo.vm(net, 'ch1', security_groups=[web.id])
    remote = topo.vm(net, 'ch2', security_groups=[web.id])
    targets = [unguarded, guarded, remote]
    wait_until(lambda: unguarded.ip in broadcast_receivers(
        sender, targets, '10.52.0.255'), 30,
        message='broadcast reaches a port without groups')
    assert not {guarded.ip, remote.ip} & broadcast_receivers(
        sender, targets, '10.52.0.255')
    _rule(lab_nb, web, 'ingress', protocol='udp', port_range_min=9999,
          port_range_max=9999, remote_ip_prefix='10.52.0.0/24')
    wait_until(lambda: broadcast_receivers(
        sender, targets, '10.52.0.255') == {vm.ip for vm in targets}, 30,
        message='broadcast allowed by an ingress rule')
