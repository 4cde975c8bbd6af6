"""dfctl check on the real lab: things broken on purpose are each named
with their cause, and a healthy pair of chassis has nothing to report."""
import time

import pytest

from waiting import wait_until


@pytest.fixture
def check(dfctl_verdict):
    return lambda: dfctl_verdict('check')


@pytest.fixture
def pair(topo):
    """a on ch1 and b on ch2 on one network, pinging."""
    net = topo.network('10.81.0.0/24')
    a = topo.vm(net, 'ch1')
    b = topo.vm(net, 'ch2')
    topo.wait_bound(a)
    topo.wait_bound(b)
    wait_until(lambda: a.ping(b.ip), 30, message='a pings b')
    return a, b


def _about(out, *subjects):
    return [f['text'] for f in out['findings'] if f['subject'] in subjects]


def test_healthy_chassis_have_nothing_to_report(pair, check):
    code, out = check()
    assert _about(out, 'ch1', 'ch2', 'ch1.df-local-controller',
                  'ch2.df-local-controller') == []
    assert code == (1 if out['findings'] else 0)
    assert out['ok'] == (code == 0)
    for chassis in ('ch1', 'ch2'):
        agent = out['agents'][chassis]
        assert agent['connected'] and agent['flows'] == agent['wanted'] > 0
        others = {'ch1', 'ch2', 'ch3'} - {chassis}
        assert {c: s['state'] for c, s in agent['bfd'].items()} == \
            {c: 'up' for c in others}


def test_an_agent_restart_keeps_its_bfd_ports(pair, lab):
    """The restarted agent reads the chassis one change at a time; its
    BFD ports follow the whole view, not each change: the first chassis
    read alone once made it delete the tunnel port to every other
    chassis (and drop the packets arriving on it) and add it back."""
    ch2 = lab.chassis['ch2']

    def bfd_ports():
        return sorted(ch2.vsctl('--bare', '--columns=_uuid,name', 'find',
                                'Interface', 'bfd:enable=true').split())
    before = bfd_ports()
    assert len(before) == 4         # to ch1 and ch3: uuid and name each
    ch2.stop_controller()
    ch2.start_controller()
    ch2.wait_connected()
    time.sleep(1)                   # the BFD worker has applied its wish
    assert bfd_ports() == before
    assert 'could not set up the BFD ports' not in ch2.controller_log()


def test_a_blocked_underlay_is_bfd_down_in_check(pair, check, lab):
    ch1, ch2 = lab.chassis['ch1'], lab.chassis['ch2']
    ch2.ofctl('add-flow', 'br-phy', f'priority=100,ip,nw_src={ch1.ip},'
              'actions=drop')

    def tunnels():
        return [f['text'] for f in check()[1]['findings']
                if f['kind'] == 'tunnel']
    try:
        wait_until(lambda: any(t.startswith(f'tunnel ch1 -> ch2 ({ch2.ip}): '
                                            'BFD down') for t in tunnels()),
                   15, message='BFD down ch1 -> ch2 reported')
        assert not a_pings(pair)
    finally:
        ch2.ofctl('del-flows', 'br-phy', f'ip,nw_src={ch1.ip}')
    wait_until(lambda: tunnels() == [], 15, message='BFD back up')


def a_pings(pair):
    a, b = pair
    return a.ping(b.ip, count=2)


def test_hand_edited_flows_are_drift_named_with_their_app(pair, check, lab):
    _, b = pair
    ch1 = lab.chassis['ch1']
    ch1.ofctl('del-flows', 'br-int', f'table=75,reg7={hex(b.port.unique_key)}')
    ch1.ofctl('add-flow', 'br-int', 'table=55,priority=1,cookie=0x99,'
              'actions=drop')
    try:
        code, out = check()
        assert code == 1 and not out['ok']
        found = _about(out, 'ch1')
        assert 'chassis ch1: 1 flow(s) of app tunneling missing in table ' \
            '75 (egress) priority 100' in found, found
        assert 'chassis ch1: 1 flow(s) with cookie 0x99 (no app\'s) in ' \
            'table 55 priority 1' in found, found
    finally:
        ch1.ofctl('del-flows', 'br-int', 'cookie=0x99/-1')


def test_a_missing_tunnel_port_is_named(pair, check, lab):
    ch1 = lab.chassis['ch1']
    ch1.vsctl('del-port', 'br-int', 'tun-geneve')
    try:
        wait_until(lambda: 'chassis ch1: no geneve tunnel port on br-int' in
                   _about(check()[1], 'ch1'), 10,
                   message='missing tunnel port reported')
    finally:
        ch1.stop_controller()           # a new agent puts the port back
        ch1.start_controller()
        ch1.wait_connected()


def test_a_stopped_agent_and_its_ports(pair, check, lab, topo, lab_nb):
    _, b = pair
    idle = lab_nb.create('logical_port', {
        'network_id': b.port.network_id, 'name': 'claimed',
        'device_owner': 'compute:nova', 'device_id': 'vm-42'})
    ch2 = lab.chassis['ch2']
    ch2.stop_controller()
    try:
        code, out = check()
        assert code == 1
        service = _about(out, 'ch2.df-local-controller')
        assert len(service) == 1 and service[0].startswith(
            'df-local-controller on ch2 down since ') and \
            'its ZooKeeper session is gone' in service[0]
        assert f'port {b.port.name} ({b.port.id}) is bound to chassis ch2, ' \
            'whose df-local-controller is down' in _about(out, b.port.id)
        assert f'port claimed ({idle.id}) of compute:nova vm-42 is plugged ' \
            'on no chassis (no interface with its iface-id)' in \
            _about(out, idle.id)
        assert 'ch2' not in out['agents']     # not asked: it is down
    finally:
        ch2.start_controller()
        ch2.wait_connected()
        lab_nb.delete('logical_port', idle.id)
