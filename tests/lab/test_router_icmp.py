"""ICMP errors from the distributed router, with real packets: traceroute
shows the gateway, unknown hosts and networks are reported unreachable,
and a flood of expiring packets gets a bounded number of answers."""
import re

import pytest

from test_l2 import pings


@pytest.fixture
def routed(topo):
    red = topo.network('10.44.0.0/24')
    blue = topo.network('10.45.0.0/24')
    topo.router('r-icmp', [red, blue])
    a = topo.vm(red, 'ch1')
    b = topo.vm(blue, 'ch2')
    a.run('ip', 'route', 'add', 'default', 'via', '10.44.0.1')
    b.run('ip', 'route', 'add', 'default', 'via', '10.45.0.1')
    assert pings(a, b.ip)
    return a, b


def _ping(vm, *args):
    return vm.run('ping', '-n', '-c', '1', '-W', '2', *args, check=False)


def test_traceroute_shows_the_gateway_then_the_destination(routed):
    a, b = routed
    out = a.run('busybox', 'traceroute', '-I', '-n', '-q', '1', '-w', '2',
                '-m', '4', b.ip, check=False)
    hops = [line.split() for line in out.splitlines()
            if re.match(r'\s*\d+\s', line)]
    assert hops[0][1] == '10.44.0.1', out
    assert hops[1][1] == b.ip, out
    assert 'Time to live exceeded' in _ping(a, '-t', '1', b.ip)


def test_unknown_host_and_network_are_unreachable(routed):
    a, _ = routed
    out = _ping(a, '10.45.0.99')
    assert 'From 10.44.0.1' in out and 'Host Unreachable' in out, out
    out = _ping(a, '10.99.0.5')
    assert 'From 10.44.0.1' in out and 'Net Unreachable' in out, out


def test_expiring_flood_gets_bounded_answers(routed):
    a, b = routed
    out = a.run('ping', '-n', '-c', '300', '-i', '0.002', '-t', '1', '-W',
                '1', b.ip, check=False, timeout=60)
    answers = out.count('Time to live exceeded')
    assert 0 < answers < 100, out[-500:]
