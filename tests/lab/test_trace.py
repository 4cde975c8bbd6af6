"""dfctl trace on the real lab: things broken on purpose, the trace names
the cause, the physical trace agrees with the model (or says where it
does not), and real packets behave as the trace says."""
import pytest

from waiting import wait_until


@pytest.fixture
def trace(dfctl_verdict):
    """dfctl trace ... --json against the lab: (exit code, answer)."""
    return lambda *args: dfctl_verdict('trace', *args)


@pytest.fixture
def routed(topo, lab_nb):
    """a (ch1, 10.71.0.0/24, group 'web-trace': egress + icmp in) and
    b (ch2, 10.72.0.0/24, same group) through router rt."""
    group = lab_nb.create('security_group', {'name': 'web-trace'})
    for rule in ({'direction': 'egress'},
                 {'direction': 'ingress', 'protocol': 'icmp'}):
        lab_nb.create('security_group_rule',
                      dict(rule, security_group_id=group.id))
    net_a = topo.network('10.71.0.0/24')
    net_b = topo.network('10.72.0.0/24')
    topo.router('rt', [net_a, net_b])
    a = topo.vm(net_a, 'ch1', security_groups=[group.id])
    b = topo.vm(net_b, 'ch2', security_groups=[group.id])
    for vm, gateway in ((a, '10.71.0.1'), (b, '10.72.0.1')):
        topo.wait_bound(vm)
        vm.run('ip', 'route', 'add', 'default', 'via', gateway)
    wait_until(lambda: a.ping(b.ip), 30, message='a pings b')
    yield a, b, group
    topo.cleanup()
    lab_nb.delete('security_group', group.id, cascade=True)


def _hits(hop):
    return [(h['table'], h.get('app')) for h in hop['result']['hits']
            if h['bridge'] == 'br-int']


def test_healthy_routed_path_across_two_chassis_shows_every_hop(
        routed, trace):
    a, b, _ = routed
    code, out = trace('--from', a.port.id, '--to', b.port.name,
                      '--physical')
    assert code == 0 and out['delivered'], out['logical']['summary']
    assert out['disagreement'] is None
    logical = [s['stage'] for s in out['logical']['steps']]
    assert logical == ['classifier', 'port_security', 'egress_sg',
                       'arp_responder', 'l2_lookup', 'l3_lookup', 'egress',
                       'ingress_lookup', 'ingress_sg', 'ingress_dispatch']
    first, second = out['physical']
    assert (first['chassis'], second['chassis']) == ('ch1', 'ch2')
    assert (60, 'l3') in _hits(first) and (75, 'tunneling') in _hits(first)
    assert (110, 'security_groups') in _hits(second)
    routed_hit = next(h for h in first['result']['hits']
                      if h['table'] == 60)
    assert {'table': 'logical_port', 'id': b.port.id,
            'name': b.port.name} in routed_hit['objects']
    assert not any(h.get('stale') for hop in (first, second)
                   for h in hop['result']['hits'])
    delivered = second['result']['outcome']
    assert delivered['kind'] == 'delivered' and \
        delivered['outputs'][0]['port'] == b.port.id
    assert a.ping(b.ip)


def test_missing_ingress_rule_is_named_and_the_fix_lets_tcp_through(
        routed, trace, topo, lab_nb):
    a, b, group = routed
    topo.serve(b, 8080)
    code, out = trace('--from', a.port.id, '--to', b.port.id, '--protocol',
                      'tcp', '--dport', '8080', '--physical')
    assert code == 1
    last = out['logical']['steps'][-1]
    assert last['stage'] == 'ingress_sg' and last['chassis'] == 'ch2'
    assert 'no ingress rule of groups web-trace' in last['text'] and \
        'tcp/8080' in last['text']
    assert out['disagreement'] is None      # the switch drops it there too
    outcome = out['physical'][-1]['result']['outcome']
    assert outcome == {'kind': 'dropped', 'table': 110}
    assert a.connect_tcp(b.ip, 8080) is None        # really dropped
    lab_nb.create('security_group_rule', {
        'security_group_id': group.id, 'direction': 'ingress',
        'protocol': 'tcp', 'port_range_min': 8080, 'port_range_max': 8080})
    wait_until(lambda: trace('--from', a.port.id, '--to', b.port.id,
                             '--protocol', 'tcp', '--dport', '8080',
                             '--physical')[0] == 0, 20,
               message='trace delivered after the fix')
    wait_until(lambda: a.connect_tcp(b.ip, 8080) is not None, 20,
               message='tcp through after the fix')


def test_spoofed_source_is_dropped_by_port_security_on_the_switch(
        routed, trace):
    a, b, _ = routed
    code, out = trace('--from', a.port.id, '--to', b.port.id, '--src-ip',
                      '10.71.0.99', '--physical')
    assert code == 1
    assert 'port_security of' in out['logical']['summary'] and \
        '10.71.0.99 is not one of its addresses' in out['logical']['summary']
    assert out['physical'][0]['result']['outcome'] == {'kind': 'dropped',
                                                       'table': 5}
    assert out['disagreement'] is None
    a.run('ip', 'addr', 'add', '10.71.0.99/24', 'dev', 'eth0')
    assert not a.ping(b.ip, count=2, interface='10.71.0.99')


def test_a_flow_deleted_by_hand_is_where_model_and_switch_disagree(
        routed, trace, lab):
    a, b, _ = routed
    key = b.port.unique_key
    lab.chassis['ch1'].ofctl('del-flows', 'br-int',
                             f'table=75,reg7={hex(key)}')
    code, out = trace('--from', a.port.id, '--to', b.port.id, '--physical')
    assert code == 1 and out['logical']['verdict'] == 'delivered'
    line = out['disagreement']
    assert line.startswith('DISAGREE: the model says delivered, but '
                           'chassis ch1 drops it at table 75 (egress)'), line
    assert not a.ping(b.ip)


def test_router_without_interface_on_the_destination_subnet(
        routed, trace, topo):
    a, _, _ = routed
    other = topo.network('10.73.0.0/24')
    c = topo.vm(other, 'ch2')
    code, out = trace('--from', a.port.id, '--to', c.port.id, '--physical')
    assert code == 1
    last = out['logical']['steps'][-1]
    assert last['stage'] == 'l3_lookup' and 'no interface, extra route ' \
        'or external gateway for 10.73.0.2' in last['text']
    # The switch hands it to router_icmp (network unreachable), as said.
    assert out['physical'][0]['result']['outcome'] == {
        'kind': 'controller', 'table': 60}
    assert out['disagreement'] is None
    assert 'Unreachable' in a.run('ping', '-c', '1', '-W', '2', c.ip,
                                  check=False)


def test_a_stopped_destination_agent_ends_the_physical_trace_with_why(
        routed, trace, lab):
    a, b, _ = routed
    ch2 = lab.chassis['ch2']
    ch2.stop_controller()
    try:
        code, out = trace('--from', a.port.id, '--to', b.port.id,
                          '--physical')
        assert out['logical']['verdict'] == 'delivered'
        first, second = out['physical']
        assert first['result']['outcome']['kind'] == 'tunnel'
        assert second['chassis'] == 'ch2' and \
            'df-local-controller down since' in second['error'], second
        assert code == 1           # not proven through
    finally:
        ch2.start_controller()
        ch2.wait_connected()


def test_a_trunk_subport_is_traced_tagged_on_the_switch(topo, trace):
    parent_net = topo.network('10.74.0.0/24')
    child_net = topo.network('10.75.0.0/24')
    vm = topo.trunk_vm(parent_net, 'ch1')
    child = topo.subport(vm, child_net, 75)
    peer = topo.vm(child_net, 'ch2')
    topo.wait_bound(vm)
    topo.wait_bound(peer)
    for source in (('--from', vm.port.id, '--vlan', '75'),
                   ('--from', child.id)):
        code, out = trace(*source, '--to', peer.port.id, '--physical')
        assert code == 0, out['logical']['summary']
        first = out['physical'][0]['result']
        assert ',dl_vlan=75,' in first['flow']
        assert out['physical'][-1]['result']['outcome']['outputs'][0][
            'port'] == peer.port.id
