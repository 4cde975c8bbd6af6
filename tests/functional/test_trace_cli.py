"""dfctl trace and check against a real ZooKeeper (no agents): the
logical trace from the CLI, its exit codes, bad input refused in one
line, and check naming chassis without agents and their ports."""
import json

import pytest


@pytest.fixture
def model(dfctl):
    """Two networks joined by router r; vm1 (group web: egress, icmp in,
    no tcp in) on n1 bound to ch1, vm2 (same group) on n2 bound to ch2,
    idle (unbound) on n1."""
    dfctl('chassis', 'create', '--id', 'ch1', '--ip', '192.0.2.1')
    dfctl('chassis', 'create', '--id', 'ch2', '--ip', '192.0.2.2')
    for name, cidr in (('n1', '10.1.0.0/24'), ('n2', '10.2.0.0/24')):
        dfctl('network', 'create', '--name', name)
        dfctl('subnet', 'create', '--network-id', name, '--name',
              f'{name}-v4', '--cidr', cidr)
    dfctl('router', 'create', '--name', 'r')
    for subnet in ('n1-v4', 'n2-v4'):
        dfctl('router-interface', 'create', '--router-id', 'r',
              '--subnet-id', subnet)
    dfctl('security-group', 'create', '--name', 'web')
    dfctl('security-group-rule', 'create', '--security-group-id', 'web',
          '--direction', 'egress')
    dfctl('security-group-rule', 'create', '--security-group-id', 'web',
          '--direction', 'ingress', '--protocol', 'icmp')
    dfctl('port', 'create', '--network-id', 'n1', '--name', 'vm1',
          '--security-groups', 'web', '--binding-chassis', 'ch1')
    dfctl('port', 'create', '--network-id', 'n2', '--name', 'vm2',
          '--security-groups', 'web', '--binding-chassis', 'ch2')
    dfctl('port', 'create', '--network-id', 'n1', '--name', 'idle')
    return dfctl


def test_routed_ping_is_delivered_with_every_stage_named(model):
    proc = model('trace', '--from', 'vm1', '--to', 'vm2')
    lines = proc.stdout.splitlines()
    assert lines[0] == 'icmp type 8 10.1.0.2 -> 10.2.0.2: delivered'
    text = proc.stdout
    for stage in ('classifier', 'port_security', 'egress_sg', 'l3_lookup',
                  'egress', 'ingress_sg', 'ingress_dispatch'):
        assert f' {stage} ' in text
    assert 'to chassis ch2 (192.0.2.2)' in text
    assert 'router r (' in text


def test_a_missing_rule_exits_1_and_names_the_group(model):
    proc = model('--json', 'trace', '--from', 'vm1', '--to', 'vm2',
                 '--protocol', 'tcp', '--dport', '22', expect=1)
    out = json.loads(proc.stdout)
    assert out['delivered'] is False
    assert out['logical']['verdict'] == 'dropped'
    last = out['logical']['steps'][-1]
    assert last['stage'] == 'ingress_sg' and \
        'no ingress rule of groups web (' in last['text']
    assert last['objects'][0]['name'] == 'vm2'
    # --json after the subcommand works too
    again = model('trace', '--from', 'vm1', '--to', 'vm2', '--protocol',
                  'tcp', '--dport', '22', '--json', expect=1)
    assert json.loads(again.stdout)['logical'] == out['logical']


def test_unbound_ports(model):
    proc = model('trace', '--from', 'vm1', '--to', 'idle', expect=1)
    assert 'dropped at 75 (egress): port idle' in proc.stdout and \
        'is bound to no chassis' in proc.stdout
    proc = model('--json', 'trace', '--from', 'idle', '--to', 'vm1',
                 '--physical', expect=1)
    out = json.loads(proc.stdout)
    assert 'there is no switch to trace on' in out['physical'][0]['error']


@pytest.mark.parametrize('args, code, message', [
    (['--from', 'ghost', '--to', 'vm1'], 1,
     'dfctl: error: logical_port ghost does not exist'),
    (['--from', 'vm1', '--to', 'nobody'], 1,
     'dfctl: error: --to nobody: no port has that id or name, and it is not '
     'an IP address'),
    (['--from', 'vm1', '--to', '203.0.113.7'], 1,
     'dfctl: error: 203.0.113.7 is on no subnet, is no floating IP, and no '
     'router of network'),
    (['--from', 'vm1', '--to', 'vm2', '--ipv6'], 1,
     'dfctl: error: port vm1 ('),
    (['--from', 'vm1', '--to', 'vm2', '--dport', '22'], 1,
     'dfctl: error: --dport/--sport need --protocol tcp or udp'),
    (['--from', 'vm1', '--to', 'vm2', '--protocol', 'sctp'], 2,
     "argument --protocol: invalid choice: 'sctp'"),
    (['--from', 'vm1', '--to', 'vm2', '--src-ip', '10.1.0.300'], 2,
     'argument --src-ip: 10.1.0.300 is not an IP address'),
    (['--from', 'vm1', '--to', 'vm2', '--src-mac', 'zz'], 2,
     'argument --src-mac: zz is not a MAC address'),
    (['--from', 'vm1'], 2, 'the following arguments are required: --to'),
])
def test_bad_input_is_refused_in_one_line(model, args, code, message):
    proc = model('trace', *args, expect=code)
    assert message in proc.stderr.splitlines()[-1]
    assert proc.stdout == ''


def test_check_without_agents_names_each_chassis_and_port(model):
    proc = model('--json', 'check', expect=1)
    out = json.loads(proc.stdout)
    texts = [f['text'] for f in out['findings']]
    assert out['ok'] is False and out['agents'] == {}
    assert 'chassis ch1 has no df-local-controller registered' in texts
    vm1 = [f for f in out['findings'] if f['kind'] == 'port' and
           'vm1' in f['text']]
    assert len(vm1) == 1 and vm1[0]['text'].endswith(
        'is bound to chassis ch1, whose df-local-controller is down')
    text = model('check', expect=1).stdout
    assert 'SERVICE  chassis ch2 has no df-local-controller registered' in \
        text


def test_trace_requests_leave_nothing_behind(nb, zk_server):
    """An unanswered request times out and is removed; the request of a
    dfctl that dies goes with its session (ephemeral)."""
    import threading

    from dragonflow.store import zk
    from dragonflow.trace import requests
    layout = nb.store.layout
    base = requests.chassis_dir(layout, 'ch9')
    assert requests.ask(nb.client, layout, 'ch9', {'kind': 'health'},
                        timeout=0.5) is None
    assert nb.client.get_children(base) == []
    # An agent answering: the asker gets the result and the node goes.
    seen = threading.Event()

    def agent(children):
        for name in children:
            found = requests.pending(nb.client, f'{base}/{name}')
            if found:
                requests.answer(nb.client, f'{base}/{name}', found[0],
                                found[1], {'ok': True})
                seen.set()
    nb.client.ChildrenWatch(base, agent)
    assert requests.ask(nb.client, layout, 'ch9', {'kind': 'health'},
                        timeout=5) == {'ok': True}
    assert seen.is_set() and nb.client.get_children(base) == []
    # A dfctl that dies mid-request: its node goes with its session.
    other = zk.make_client(zk_server.address)
    other.start(timeout=10)
    other.create(f'{base}/req-', b'{"request": {}}', ephemeral=True,
                 sequence=True)
    other.stop()
    other.close()
    assert nb.client.get_children(base) == []
