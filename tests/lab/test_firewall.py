"""Firewall groups (FWaaS v2) with real packets on two chassis: rules in
policy order on VM ports, v4 and v6; insert-before changes the outcome;
reject answers TCP with a RST at once and UDP with ICMP; replies of
allowed connections pass; with security groups both must allow; router
interfaces filter east-west, floating IP and SNAT traffic; drops are
logged; a disabled rule or group restores traffic."""
import json
import os
import subprocess
import sys

import pytest

from dragonflow import errors
from lab_harness.netlab import EXTERNAL_GATEWAY
from test_l2 import pings
from test_nat import upstream  # noqa: F401  (module fixture)
from topology import static_ipv6
from waiting import wait_until

SERVER = """
import socket, sys, threading
name, ports = sys.argv[1].encode(), [int(p) for p in sys.argv[2:]]
def udp(port):
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind(('::', port))
    while True:
        _, peer = u.recvfrom(2048)
        u.sendto(name, peer)
def tcp(port):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('::', port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(name)
        except OSError:
            pass
        c.close()
for p in ports:
    threading.Thread(target=udp, args=(p,), daemon=True).start()
    threading.Thread(target=tcp, args=(p,), daemon=True).start()
threading.Event().wait()
"""

PROBE = """
import json, socket, sys, time
proto, ip, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), \\
    float(sys.argv[4])
family = socket.AF_INET6 if ':' in ip else socket.AF_INET
start = time.monotonic()
try:
    if proto == 'tcp':
        s = socket.create_connection((ip, port), timeout=timeout)
    else:
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        s.connect((ip, port))
        s.send(b'?')
    result = s.recv(100).decode().strip() or 'empty'
except ConnectionRefusedError:
    result = 'refused'
except socket.timeout:
    result = 'timeout'
except OSError as e:
    result = f'error {e.errno}'
print(json.dumps([result, time.monotonic() - start]))
"""


def probe(vm, proto, ip, port, timeout=1.5):
    """('server name' | 'refused' | 'timeout' | 'error N', seconds)."""
    out = subprocess.run(
        ['ip', 'netns', 'exec', vm.ns, sys.executable, '-c', PROBE, proto,
         ip, str(port), str(timeout)], capture_output=True, text=True,
        timeout=60, check=True).stdout
    return tuple(json.loads(out))


def outcome(vm, proto, ip, port):
    return probe(vm, proto, ip, port)[0]


def settles(vm, proto, ip, port, expected, timeout=20):
    """Probe until the outcome is expected (flows take a moment)."""
    seen = []

    def done():
        seen.append(outcome(vm, proto, ip, port))
        return seen[-1] == expected
    wait_until(done, timeout, interval=0.3,
               message=lambda: f'{vm.name} {proto} {ip}:{port}: wanted '
               f'{expected}, last {seen[-1:]}')


def blocked(vm, ip, tries=3):
    return not any(vm.ping(ip, count=1, timeout=1) for _ in range(tries))


@pytest.fixture
def fw(lab_nb, topo):
    """Creates firewall rules, policies and groups; removes them (groups
    first) after the test's ports."""
    made = {'firewall_group': [], 'firewall_policy': [], 'firewall_rule': []}

    class Fw:
        def rule(self, **fields):
            made['firewall_rule'].append(
                lab_nb.create('firewall_rule', fields))
            return made['firewall_rule'][-1]

        def policy(self, rules, **fields):
            made['firewall_policy'].append(lab_nb.create(
                'firewall_policy', dict(
                    fields, firewall_rules=[r.id for r in rules])))
            return made['firewall_policy'][-1]

        def group(self, ports, ingress=None, egress=None, **fields):
            made['firewall_group'].append(lab_nb.create(
                'firewall_group', dict(
                    fields, ports=[p.id for p in ports],
                    ingress_firewall_policy_id=ingress and ingress.id,
                    egress_firewall_policy_id=egress and egress.id)))
            return made['firewall_group'][-1]
    yield Fw()
    for table in ('firewall_group', 'firewall_policy', 'firewall_rule'):
        for obj in made[table]:
            try:
                lab_nb.delete(table, obj.id)
            except errors.NotFound:
                pass
    topo.cleanup()


def _dual_stack(topo, lab_nb, cidr, cidr6):
    net = topo.network(cidr)
    lab_nb.create('subnet', {'network_id': net.id, 'cidr': cidr6,
                             'topic': net.topic})
    return net


def _vm(topo, net, chassis, **fields):
    """A VM with its v4 address and, on a dual-stack network, its v6."""
    return static_ipv6(topo.vm(net, chassis, **fields))


def _serve(topo, vm, *ports):
    proc = subprocess.Popen(
        ['ip', 'netns', 'exec', vm.ns, sys.executable, '-c', SERVER,
         vm.name, *map(str, ports)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    topo.servers.append(proc)
    return proc


def _log_since(lab, chassis, start):
    path = os.path.join(lab.chassis[chassis].dir, 'controller.log')
    with open(path, 'rb') as f:
        f.seek(start)
        return f.read().decode(errors='replace')


def _log_size(lab, chassis):
    return os.path.getsize(os.path.join(lab.chassis[chassis].dir,
                                        'controller.log'))


def test_rules_in_order_reject_stateful_and_logs(
        topo, lab, lab_nb, fw, dfctl_lab, dfctl_verdict):
    net = _dual_stack(topo, lab_nb, '10.71.0.0/24', 'fd00:71::/64')
    client = _vm(topo, net, 'ch1')
    other = _vm(topo, net, 'ch1')
    server = _vm(topo, net, 'ch2')
    _serve(topo, server, 80, 22, 53, 8080)
    settles(client, 'tcp', server.ip, 80, server.name)
    assert pings(client, server.ip)

    web = fw.rule(protocol='tcp', destination_port='80',
                  source_ip_address=f'{client.ip}/32', action='allow')
    no_ping = fw.rule(protocol='icmp', action='deny')
    ping = fw.rule(protocol='icmp', action='allow')
    ssh = fw.rule(protocol='tcp', destination_port='22', action='reject')
    dns = fw.rule(protocol='udp', destination_port='53', action='reject')
    web6 = fw.rule(ip_version=6, protocol='tcp', destination_port='80',
                   action='allow')
    ping6 = fw.rule(ip_version=6, protocol='icmp', action='allow',
                    source_ip_address=f'{client.ip6}/128')
    ssh6 = fw.rule(ip_version=6, protocol='tcp', destination_port='22',
                   action='reject')
    inbound = fw.policy([web, no_ping, ping, ssh, dns, web6, ping6, ssh6])
    start = _log_size(lab, 'ch2')
    group = fw.group([server.port], ingress=inbound, log='drop')

    # First match wins: deny icmp before allow icmp.
    settles(client, 'tcp', server.ip, 8080, 'timeout')    # implicit deny
    assert outcome(client, 'tcp', server.ip, 80) == server.name
    # dfctl trace names the policy, and the switch agrees.
    code, out = dfctl_verdict('trace', '--from', client.port.id, '--to',
                              server.port.id, '--protocol', 'tcp', '--dport',
                              '8080', '--physical')
    last = out['logical']['steps'][-1]
    assert code == 1 and last['stage'] == 'fw_ingress_rules', last
    assert 'implicit deny' in last['text'] and last['chassis'] == 'ch2'
    assert out['disagreement'] is None, out['disagreement']
    # A logged drop: the switch hands it to the agent, which logs it.
    assert out['physical'][-1]['result']['outcome'] == {
        'kind': 'controller', 'table': 109}
    code, out = dfctl_verdict('trace', '--from', client.port.id, '--to',
                              server.port.id, '--protocol', 'tcp', '--dport',
                              '80', '--physical')
    assert code == 0 and out['disagreement'] is None, out['logical']
    assert blocked(client, server.ip)
    # Source prefix: another VM may not reach port 80.
    assert outcome(other, 'tcp', server.ip, 80) == 'timeout'
    # Reject: a RST at once, not a timeout; ICMP port unreachable for UDP.
    result, seconds = probe(client, 'tcp', server.ip, 22, timeout=5)
    assert result == 'refused' and seconds < 1, (result, seconds)
    assert outcome(client, 'udp', server.ip, 53) == 'refused'
    # IPv6: the same on the v6 addresses (ND passes by itself).
    assert outcome(client, 'tcp', server.ip6, 80) == server.name
    assert pings(client, server.ip6)
    assert blocked(other, server.ip6)
    assert outcome(client, 'tcp', server.ip6, 22) == 'refused'
    assert outcome(client, 'tcp', server.ip6, 8080) == 'timeout'

    # Stateful: with an egress policy denying everything, the server still
    # answers what ingress allowed, but opens nothing itself.
    nothing = fw.policy([])
    lab_nb.patch('firewall_group', group.id,
                 {'egress_firewall_policy_id': nothing.id})
    settles(server, 'tcp', client.ip, 9, 'timeout')
    assert outcome(client, 'tcp', server.ip, 80) == server.name
    assert blocked(server, client.ip)

    # Disabling the deny rule lets ping through...
    lab_nb.patch('firewall_rule', no_ping.id, {'enabled': False})
    assert pings(client, server.ip)
    # ...and a deny inserted before the allow stops it again.
    deny_client = fw.rule(protocol='icmp', action='deny',
                          source_ip_address=f'{client.ip}/32')
    dfctl_lab('firewall-policy', 'insert-rule', inbound.id, deny_client.id,
              '--before', ping.id)
    wait_until(lambda: blocked(client, server.ip, tries=1), 20,
               message='the inserted deny stops ping')
    assert pings(other, server.ip)

    # Drops are logged with the group, the rule and the 5-tuple.
    wait_until(lambda: 'firewall DROP' in _log_since(lab, 'ch2', start), 10,
               message='a drop log line on ch2')
    lines = [line for line in _log_since(lab, 'ch2', start).splitlines()
             if 'firewall DROP' in line]
    assert any(f'group={group.id}' in line and f'rule={deny_client.id}'
               in line and f'icmp {client.ip} > {server.ip}' in line
               for line in lines), lines
    assert any('(default deny)' in line and ':8080' in line
               for line in lines), lines

    # log all: an accepted connection's first packet is logged too (the
    # connection itself goes on).
    lab_nb.patch('firewall_group', group.id, {'log': 'all'})
    start = _log_size(lab, 'ch2')

    def accept_logged():
        assert outcome(client, 'tcp', server.ip, 80) == server.name
        return f'firewall ACCEPT group={group.id} rule={web.id}' in \
            _log_since(lab, 'ch2', start)
    wait_until(accept_logged, 20, interval=0.5,
               message='an accept log line on ch2')
    # The group down filters nothing.
    lab_nb.patch('firewall_group', group.id, {'admin_state_up': False})
    settles(client, 'tcp', server.ip, 8080, server.name)
    assert pings(client, server.ip)
    assert outcome(client, 'tcp', server.ip, 22) == server.name


def test_ports_of_one_group_on_one_chassis_filter_each_other(topo, fw):
    """Both ports' passes share the network's conntrack zone: the
    receiver's ingress policy still sees a new connection."""
    net = topo.network('10.74.0.0/24')
    a, b = _vm(topo, net, 'ch1'), _vm(topo, net, 'ch1')
    remote = _vm(topo, net, 'ch2')
    assert pings(a, b.ip)
    anything = fw.rule(action='allow')
    ping = fw.rule(protocol='icmp', action='allow',
                   source_ip_address=f'{remote.ip}/32')
    fw.group([a.port, b.port], egress=fw.policy([anything]),
             ingress=fw.policy([ping]))
    # The group takes a moment to reach ch1 (remote's ping passes before
    # and after): wait for it, then a and b stay apart.
    wait_until(lambda: blocked(a, b.ip, tries=1), 20,
               message='the group filters a -> b')
    assert pings(remote, b.ip)
    assert blocked(a, b.ip)
    assert blocked(b, a.ip)


def test_security_groups_and_firewall_must_both_allow(topo, fw):
    net = topo.network('10.75.0.0/24')
    sg = topo.security_group('fw-web', {'direction': 'egress'}, *[
        {'direction': 'ingress', 'protocol': 'tcp', 'port_range_min': port,
         'port_range_max': port} for port in (80, 81)])
    client = _vm(topo, net, 'ch1')
    server = _vm(topo, net, 'ch2', security_groups=[sg.id])
    _serve(topo, server, 80, 81, 82)
    settles(client, 'tcp', server.ip, 81, server.name)
    assert outcome(client, 'tcp', server.ip, 82) == 'timeout'
    allow = [fw.rule(protocol='tcp', destination_port=str(p),
                     action='allow') for p in (80, 82)]
    fw.group([server.port], ingress=fw.policy(allow))
    settles(client, 'tcp', server.ip, 81, 'timeout')
    assert outcome(client, 'tcp', server.ip, 80) == server.name
    assert outcome(client, 'tcp', server.ip, 82) == 'timeout'


def test_router_interfaces_filter_east_west_and_snat(
        topo, lab, lab_nb, fw, upstream):  # noqa: F811
    left = topo.network('10.73.1.0/24')
    right = topo.network('10.73.2.0/24')
    router = topo.router('fw-r', [left, right], external_gateway={
        'network_id': upstream.network.id})
    ports = {lab_nb.get('subnet', p.subnet_id).network_id: p
             for p in lab_nb.list('logical_router_port',
                                  router_id=router.id)}
    vms = {}
    for name, net, chassis in (('client', left, 'ch1'),
                               ('server', right, 'ch2')):
        vm = _vm(topo, net, chassis)
        gateway = lab_nb.list('subnet', network_id=net.id)[0].gateway_ip
        vm.run('ip', 'route', 'add', 'default', 'via', gateway)
        vms[name] = vm
    client, server = vms['client'], vms['server']
    _serve(topo, server, 80, 81)
    settles(client, 'tcp', server.ip, 81, server.name)

    # The right interface: only TCP 80 is routed into its subnet, and
    # its subnet opens nothing through the router; replies pass (they are
    # routed on the server's chassis, which saw the connection arrive).
    web = fw.rule(protocol='tcp', destination_port='80', action='allow')
    right_group = fw.group([ports[right.id]], ingress=fw.policy([web]),
                           egress=fw.policy([]))
    settles(client, 'tcp', server.ip, 81, 'timeout')
    assert outcome(client, 'tcp', server.ip, 80) == server.name
    assert blocked(client, server.ip)
    assert blocked(server, client.ip)
    # North-south: what comes in from outside through a floating IP is
    # routed into the subnet through the interface too.
    fip = lab_nb.create('floating_ip', {
        'floating_network_id': upstream.network.id,
        'port_id': server.port.id}).floating_ip_address
    settles(upstream, 'tcp', fip, 80, server.name)
    assert outcome(upstream, 'tcp', fip, 81) == 'timeout'
    lab_nb.patch('firewall_group', right_group.id,
                 {'egress_firewall_policy_id': None})
    assert pings(server, client.ip)

    # The left interface's egress: what left sends into the router,
    # east-west and through SNAT to the external host.
    no_8080 = fw.rule(protocol='tcp', destination_port='8080',
                      action='reject')
    anything = fw.rule(action='allow')
    fw.group([ports[left.id]], egress=fw.policy([no_8080, anything]))
    settles(client, 'tcp', EXTERNAL_GATEWAY, 8080, 'refused')
    assert outcome(client, 'tcp', EXTERNAL_GATEWAY, 8081) == \
        lab.chassis['ch1'].external_ip
    assert outcome(client, 'tcp', server.ip, 80) == server.name

    lab_nb.patch('firewall_group', right_group.id,
                 {'admin_state_up': False})
    settles(client, 'tcp', server.ip, 81, server.name)
