"""IPv6 with real packets: ping6 on one chassis and across chassis,
neighbour solicitations answered on the chassis, spoofed sources dropped,
routing between v6 subnets across chassis, SLAAC from the router's
advertisements, security groups for IPv6, and an external v6 host on a
provider network (no NAT for IPv6)."""
import os
import subprocess

import pytest

from lab_harness.netlab import PHYSNET, kill_pid, read_pidfile
from test_l2 import pings
from topology import static_ipv6, tunnel_capture
from waiting import wait_until


def v6vm(topo, net, chassis, **port_fields):
    """A VM with its NB IPv6 address configured statically (no DAD)."""
    vm = static_ipv6(topo.vm(net, chassis, static_ip=False, **port_fields))
    assert vm.ip6, f'port {vm.port.id} has no IPv6 address'
    return vm


def test_ping6_on_one_chassis_and_across_chassis(topo):
    net = topo.network('2001:db8:11::/64')
    a, b, c = (v6vm(topo, net, ch) for ch in ('ch1', 'ch1', 'ch2'))
    assert pings(a, b.ip6)
    assert pings(a, c.ip6)
    assert pings(c, b.ip6)


def test_neighbour_solicitation_for_a_remote_port_is_answered_locally(
        topo, lab):
    net = topo.network('2001:db8:12::/64')
    a = v6vm(topo, net, 'ch1')
    b = v6vm(topo, net, 'ch2')
    assert pings(a, b.ip6)
    a.run('ip', '-6', 'neigh', 'flush', 'dev', 'eth0')
    reached, out = tunnel_capture(
        lab, lambda: a.ping(b.ip6, count=2, timeout=1))
    assert reached
    assert 'ICMP6, echo request' in out
    # No solicitation for b crossed (a fresh VM's own duplicate address
    # detection may: that one is flooded on purpose).
    assert f'who has {b.ip6}' not in out, out
    assert 'lladdr' in a.run('ip', '-6', 'neigh', 'show', b.ip6)


def test_spoofed_ipv6_source_is_dropped(topo):
    net = topo.network('2001:db8:13::/64')
    a = v6vm(topo, net, 'ch1')
    b = v6vm(topo, net, 'ch2')
    assert pings(a, b.ip6)
    a.run('ip', '-6', 'addr', 'add', '2001:db8:13::99/64', 'dev', 'eth0',
          'nodad')
    assert ' 0% packet loss' not in a.run(
        'ping', '-c', '2', '-W', '1', '-I', '2001:db8:13::99', b.ip6,
        check=False)
    assert ' 0% packet loss' in a.run('ping', '-c', '1', '-W', '2', '-I',
                                      a.ip6, b.ip6, check=False)


def test_routed_ipv6_across_chassis(topo):
    red = topo.network('2001:db8:21::/64')
    blue = topo.network('2001:db8:22::/64')
    topo.router('r6', [red, blue])
    a = v6vm(topo, red, 'ch1')
    b = v6vm(topo, blue, 'ch2')
    a.run('ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:21::1')
    b.run('ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:22::1')
    assert pings(a, b.ip6)
    assert 'ttl=63' in a.run('ping', '-c', '1', '-W', '2', b.ip6)


def test_slaac_from_router_advertisements(topo, lab_nb):
    net = topo.network('10.31.0.0/24')
    lab_nb.create('subnet', {'network_id': net.id,
                             'cidr': '2001:db8:31::/64',
                             'ipv6_ra_mode': 'slaac',
                             'ipv6_address_mode': 'slaac'})
    other = topo.network('2001:db8:32::/64')
    router = topo.router('r-slaac', [])
    subnet6 = next(s for s in lab_nb.list('subnet', network_id=net.id)
                   if ':' in s.cidr)
    for subnet in (subnet6, lab_nb.list('subnet', network_id=other.id)[0]):
        lab_nb.create('logical_router_port', {'router_id': router.id,
                                              'subnet_id': subnet.id})
    vm = topo.vm(net, 'ch1')          # dual stack: v4 static, v6 by SLAAC
    expected = next(ip for ip in vm.port.ips if ':' in ip)
    wait_until(lambda: expected in vm.run('ip', '-6', 'addr', 'show',
                                          'dev', 'eth0'),
               20, interval=0.5, message='SLAAC address from the RA')
    assert 'default via fe80::' in vm.run('ip', '-6', 'route', 'show')
    far = v6vm(topo, other, 'ch2')
    far.run('ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:32::1')
    assert pings(vm, far.ip6), 'routed through the advertised router'


def test_security_group_for_ipv6(topo, lab_nb):
    net = topo.network('2001:db8:41::/64')
    group = lab_nb.create('security_group', {'name': 'v6'})
    lab_nb.create('security_group_rule', {
        'security_group_id': group.id, 'direction': 'egress',
        'ethertype': 'IPv6'})
    try:
        a = v6vm(topo, net, 'ch1', security_groups=[group.id])
        b = v6vm(topo, net, 'ch2')
        c = v6vm(topo, net, 'ch2')
        assert pings(a, b.ip6), 'egress allowed, replies come back'
        assert not any(b.ping(a.ip6, timeout=1) for _ in range(3))
        lab_nb.create('security_group_rule', {
            'security_group_id': group.id, 'direction': 'ingress',
            'ethertype': 'IPv6', 'protocol': 'icmpv6',
            'remote_ip_prefix': f'{b.ip6}/128'})
        assert pings(b, a.ip6, timeout=10), 'allowed by prefix'
        assert not any(c.ping(a.ip6, timeout=1) for _ in range(3))
    finally:
        topo.cleanup()
        lab_nb.delete('security_group', group.id, cascade=True)


@pytest.fixture
def external6(lab):
    host = lab.add_external('ext6')
    host.run('sysctl', '-qw', 'net.ipv6.conf.eth0.accept_dad=0')
    yield host
    host.destroy()
    lab.vms.pop('ext6', None)


def test_external_ipv6_host_on_a_provider_network(topo, external6):
    net = topo.network('2001:db8:51::/64', network_type='flat',
                       physical_network=PHYSNET)
    external6.run('ip', '-6', 'addr', 'add', '2001:db8:51::fe/64', 'dev',
                  'eth0', 'nodad')
    a = v6vm(topo, net, 'ch1')
    b = v6vm(topo, net, 'ch2')
    assert pings(a, '2001:db8:51::fe')
    assert pings(b, '2001:db8:51::fe')
    assert pings(external6, a.ip6)


def dhclient6(vm, *flags):
    """Run dhclient -6 once in the VM with a script that only records what
    it got (nothing on this host is touched): the lease file and the
    script's environment, as text."""
    base = f'/tmp/{vm.ns}'
    with open(f'{base}.sh', 'w') as f:
        f.write(f'#!/bin/sh\nenv >> {base}.env6\n')
    os.chmod(f'{base}.sh', 0o755)
    proc = subprocess.run(
        ['ip', 'netns', 'exec', vm.ns, 'dhclient', '-6', '-1', '-v', *flags,
         '-lf', f'{base}.lease6', '-pf', f'{base}.pid6', '-sf', f'{base}.sh',
         'eth0'], capture_output=True, text=True, timeout=60)
    out = proc.stderr
    # With a lease dhclient stays behind to renew it: stop it (by its PID,
    # which its daemonized child writes a moment after the command returns).
    if proc.returncode == 0:
        try:
            kill_pid(read_pidfile(f'{base}.pid6', timeout=3))
        except RuntimeError:
            pass
    for suffix in ('lease6', 'env6'):
        try:
            with open(f'{base}.{suffix}') as f:
                out += f.read()
        except FileNotFoundError:
            pass
    for suffix in ('sh', 'lease6', 'env6', 'pid6'):
        subprocess.run(['rm', '-f', f'{base}.{suffix}'])
    return out


@pytest.mark.parametrize('mode', ['dhcpv6-stateful', 'dhcpv6-stateless'])
def test_dhcpv6_from_the_agent(topo, lab_nb, mode):
    net = topo.network('10.32.0.0/24')
    lab_nb.create('subnet', {'network_id': net.id,
                             'cidr': '2001:db8:33::/64',
                             'ipv6_ra_mode': mode, 'ipv6_address_mode': mode,
                             'dns_nameservers': ['2001:db8:33::53']})
    vm = topo.vm(net, 'ch2')
    vm.run('sysctl', '-qw', 'net.ipv6.conf.eth0.accept_dad=0')
    address = next(ip for ip in vm.port.ips if ':' in ip)
    # dhclient needs a link-local address that is no longer tentative.
    wait_until(lambda: 'tentative' not in vm.run('ip', '-6', 'addr', 'show',
                                                 'dev', 'eth0'), 10)
    lease = dhclient6(vm, *(['-S'] if mode == 'dhcpv6-stateless' else []))
    assert '2001:db8:33::53' in lease, lease
    if mode == 'dhcpv6-stateful':
        assert f'iaaddr {address}' in lease, lease
