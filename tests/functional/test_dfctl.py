"""dfctl as an operator runs it: a subprocess against a real ZooKeeper."""
import json
import os
import subprocess
import sys
import time

import pytest

from lab_harness.zookeeper import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SAMPLE_CONFIG = os.path.join(ROOT, 'packaging', 'etc', 'dragonflow.ini')


def as_json(proc):
    return json.loads(proc.stdout)


def test_tour_with_names_tables_and_json(dfctl):
    net = as_json(dfctl('--json', 'network', 'create', '--name', 'web',
                        '--network-type', 'vxlan', '--segmentation-id', '77'))
    assert net['segmentation_id'] == 77 and net['version'] == 0
    dfctl('subnet', 'create', '--network-id', 'web', '--name', 'web-v4',
          '--cidr', '10.10.0.0/24', '--dns-nameservers', '10.10.0.53',
          '--host-routes', 'destination=10.99.0.0/16,nexthop=10.10.0.254')
    port = as_json(dfctl('--json', 'port', 'create', '--network-id', 'web',
                         '--name', 'vm1', '--allowed-address-pairs',
                         'ip_address=10.10.0.100'))
    assert port['network_id'] == net['id'] and port['ips'] == ['10.10.0.2']

    listing = dfctl('port', 'list').stdout.splitlines()
    assert listing[0].split() == ['ID', 'NAME', 'NETWORK_ID', 'MACS', 'IPS',
                                  'BINDING_CHASSIS']
    assert listing[1].split()[:2] == [port['id'], 'vm1']
    assert listing[0].index('NAME') == listing[1].index('vm1')   # aligned

    shown = dfctl('port', 'show', 'vm1').stdout
    assert 'ips                    10.10.0.2' in shown
    updated = as_json(dfctl('--json', 'port', 'update', 'vm1', '--name', 'vm-1',
                            '--version', '0'))
    assert updated['name'] == 'vm-1' and updated['version'] == 1
    assert [p['name'] for p in as_json(dfctl('--json', 'port', 'list', '--where',
                                             'name=vm-1'))] == ['vm-1']
    assert dfctl('port', 'delete', 'vm-1').stdout.startswith('deleted port')


@pytest.mark.parametrize('args, message', [
    (['network', 'create', '--network-type', 'vlan'],
     'logical_switch.physical_network: is required for vlan networks'),
    (['network', 'create', '--mtu', 'big'],
     'logical_switch.mtu: must be an integer'),
    (['subnet', 'create', '--network-id', 'nosuchnet', '--cidr', '10.0.0.0/24'],
     'subnet.network_id: logical_switch nosuchnet does not exist'),
    (['subnet', 'create', '--network-id', 'x', '--cidr', '10.0.0.300/24'],
     'subnet.cidr: is not a valid CIDR'),
    (['port', 'show', 'ghost'], 'logical_port ghost does not exist'),
    (['bgp-peer', 'create', '--peer-ip', '10.0.0.1', '--remote-as', '0'],
     'bgp_peer.remote_as: must be >= 1'),
    (['security-group-rule', 'create', '--security-group-id', 'x',
      '--direction', 'ingress', '--protocol', 'tcp', '--port-range-min', '90',
      '--port-range-max', '80'],
     'security_group_rule.port_range_min: 90 is above port_range_max 80'),
])
def test_bad_input_exits_1_with_one_line_naming_the_field(dfctl, args, message):
    proc = dfctl(*args, expect=1)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'dfctl: error: {message}')
    assert proc.stdout == ''


def test_stale_version_and_references(dfctl):
    dfctl('network', 'create', '--name', 'n1')
    dfctl('subnet', 'create', '--network-id', 'n1', '--cidr', '10.0.0.0/24')
    dfctl('network', 'update', 'n1', '--mtu', '1400')
    stale = dfctl('network', 'update', 'n1', '--mtu', '1300', '--version', '0',
                  expect=1)
    assert 'version 0 is stale' in stale.stderr
    busy = dfctl('network', 'delete', 'n1', expect=1)
    assert 'is still used by subnet:' in busy.stderr
    dfctl('network', 'delete', 'n1', '--cascade')
    assert as_json(dfctl('--json', 'subnet', 'list')) == []


def test_usage_errors_exit_2(dfctl):
    assert 'unrecognized arguments' in dfctl('network', 'create', '--colour',
                                             'red', expect=2).stderr
    dfctl('nosuchresource', 'list', expect=2)


def test_help_everywhere(dfctl):
    top = dfctl('--help').stdout
    for resource in ('network', 'subnet', 'port', 'router', 'router-interface',
                     'floatingip', 'security-group', 'security-group-rule',
                     'bgp-speaker', 'bgp-peer', 'chassis', 'service'):
        assert resource in top
        assert 'create' in dfctl(resource, '--help').stdout or \
            resource == 'service'
    assert '--segmentation-id' in dfctl('network', 'create', '--help').stdout


def test_unreachable_zookeeper_fails_fast_and_clearly(dfctl_env, tmp_path):
    config = tmp_path / 'df.ini'
    config.write_text('[df]\nremote_db_hosts = 127.0.0.1:%d\n'
                      'zk_connect_timeout = 2\n' % free_port())
    env = {k: v for k, v in dfctl_env.items()
           if k != 'OS_DF__REMOTE_DB_HOSTS'}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, '-m', 'dragonflow.cli.dfctl',
                           '--config-file', str(config), 'network', 'list'],
                          env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 3
    assert proc.stderr.startswith('dfctl: error: cannot reach ZooKeeper at '
                                  '127.0.0.1:')
    assert 'Traceback' not in proc.stderr
    assert elapsed < 10


def test_sample_config_parses(dfctl_env):
    proc = subprocess.run([sys.executable, '-m', 'dragonflow.cli.dfctl',
                           '--config-file', SAMPLE_CONFIG, 'network', 'list'],
                          env=dfctl_env, capture_output=True, text=True,
                          timeout=60)
    # The environment (test ZooKeeper) overrides the sample's host.
    assert proc.returncode == 0, proc.stderr


def test_service_and_chassis_lists_show_state(dfctl, nb):
    from dragonflow.nb import health
    nb.create('chassis', {'id': 'compute1', 'hostname': 'compute1',
                          'ip': '192.0.2.11'})
    reporter = health.ServiceReporter(nb, 'df-local-controller', 'compute1',
                                      'compute1', report_interval=5).start()
    try:
        services = as_json(dfctl('--json', 'service', 'list'))
        assert [(s['id'], s['state'], s['host']) for s in services] == [
            ('compute1.df-local-controller', 'up', 'compute1')]
        table = dfctl('chassis', 'list').stdout.splitlines()
        assert table[0].split() == ['ID', 'HOSTNAME', 'IP', 'TUNNEL_TYPES',
                                    'STATE', 'SINCE']
        assert table[1].split()[:5] == ['compute1', 'compute1', '192.0.2.11',
                                        'geneve', 'up']
    finally:
        reporter.stop()


def test_a_huge_name_and_a_bad_prefix_get_short_clear_errors(dfctl):
    proc = dfctl('network', 'create', '--name', 'n' * 100000, expect=1)
    assert len(proc.stderr) < 300 and '(100000 characters)' in proc.stderr
    proc = dfctl('network', 'create', '--name', 'two\nlines', expect=1)
    assert 'control characters' in proc.stderr
    assert proc.stderr.count('\n') == 1
    dfctl('network', 'create', '--name', 'p')
    proc = dfctl('subnet', 'create', '--network-id', 'p', '--cidr',
                 '10.0.0.0/33', expect=1)
    assert 'prefix length 33 is out of range for IPv4' in proc.stderr
    assert 'host bits' not in proc.stderr


@pytest.mark.parametrize('name', ['.', '..', '../../x/..', 'a/b'])
def test_names_that_look_like_paths_reach_their_object(dfctl, name):
    """Names are not ids: one like '..' is looked up by name, never used
    as a path in the store (it was: 'relative paths not allowed')."""
    net = as_json(dfctl('--json', 'network', 'create', '--name', name))
    assert as_json(dfctl('--json', 'network', 'show', name))['id'] == net['id']
    dfctl('network', 'update', name, '--mtu', '1400')
    assert as_json(dfctl('--json', 'network', 'show', net['id']))['mtu'] == \
        1400
    dfctl('network', 'delete', name)
    proc = dfctl('network', 'show', name, expect=1)
    assert f'logical_switch {name} does not exist' in proc.stderr
    assert 'relative paths' not in proc.stderr


def test_list_says_what_it_skipped(dfctl, nb):
    """A port whose stored body is garbage is left out of the table, and
    stderr says which and why (it used to vanish silently)."""
    dfctl('network', 'create', '--name', 'n1')
    good = as_json(dfctl('--json', 'port', 'create', '--network-id', 'n1'))
    bad = as_json(dfctl('--json', 'port', 'create', '--network-id', 'n1'))
    nb.client.set(nb.store.layout.obj('logical_port', bad['id']), b'{oops')
    proc = dfctl('port', 'list')
    assert good['id'] in proc.stdout and bad['id'] not in proc.stdout
    assert f'skipped logical_port {bad["id"]}: ' in proc.stderr
    assert '1 logical_port object(s) not listed' in proc.stderr


def test_a_corrupted_object_is_removed_with_force(dfctl, nb):
    """A port whose body is garbage blocks its own delete and its network's
    cascade; delete --force removes it with its references, unique keys
    and feed membership, and a subscriber holding it sees it go."""
    net = as_json(dfctl('--json', 'network', 'create', '--name', 'n1'))
    dfctl('subnet', 'create', '--network-id', 'n1', '--cidr', '10.7.0.0/24')
    port = as_json(dfctl('--json', 'port', 'create', '--network-id', 'n1'))
    changes = []
    sub = nb.subscribe(changes.append, tables=['logical_port'])
    try:
        sub.wait_synced(10)
        nb.client.set(nb.store.layout.obj('logical_port', port['id']),
                      b'not json')
        assert 'not JSON' in dfctl('port', 'delete', port['id'],
                                   expect=1).stderr
        dfctl('network', 'delete', 'n1', '--cascade', expect=1)
        proc = dfctl('network', 'delete', 'n1', expect=1)
        assert port['id'] in proc.stderr
        dfctl('port', 'delete', port['id'], '--force')
        deadline = time.monotonic() + 10
        while not any(c.action == 'delete' and c.id == port['id']
                      for c in changes) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(c.action == 'delete' and c.id == port['id']
                   for c in changes)
    finally:
        sub.stop()
    # Its address and MAC are free again, its network unreferenced.
    again = as_json(dfctl('--json', 'port', 'create', '--network-id', 'n1',
                          '--ips', port['ips'][0], '--macs', port['macs'][0]))
    dfctl('port', 'delete', again['id'])
    dfctl('network', 'delete', 'n1', '--cascade')
    assert nb.list('logical_switch') == []
    # --force is for corrupted objects only.
    net = as_json(dfctl('--json', 'network', 'create', '--name', 'n2'))
    proc = dfctl('network', 'delete', net['id'], '--force', expect=1)
    assert 'is valid: delete it without --force' in proc.stderr
