"""The node lab: systemd-booted Debian 12 nodes deployed by playbooks/site.yml
from the local package repository, verified by playbooks/verify.yml
(testinfra), with real traffic between VMs on two nodes."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest
import yaml

from lab_harness import netlab
from lab_harness import nodes
from lab_harness import tls
from waiting import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BRIDGE = 'dfn-ul'
SUBNET = '172.30.210'
NODES = {'zk1': ('dfnzk1', 10, 'zookeeper'),
         'zk2': ('dfnzk2', 13, 'zookeeper'),
         'zk3': ('dfnzk3', 14, 'zookeeper'),
         'compute1': ('dfncmp1', 11, 'compute'),
         'compute2': ('dfncmp2', 12, 'compute')}

if os.geteuid() != 0 or not shutil.which('systemd-nspawn') or \
        not shutil.which('ansible-playbook'):
    pytest.skip('needs root, systemd-nspawn and ansible',
                allow_module_level=True)


LAB_INVENTORY = os.path.join(ROOT, 'inventories', 'lab')


def tls_vars(workdir, zk_hosts, port=2182):
    """The roles' TLS variables for a throwaway CA: ZooKeeper serves TLS
    on port (client certificates required) and every Dragonflow client
    connects with TLS, as an operator turns it on."""
    certs = tls.make_ca(os.path.join(workdir, 'tls'), addresses=zk_hosts)

    def pem(key):
        with open(certs[key]) as f:
            return f.read()
    return {'zookeeper_tls_port': port,
            'zookeeper_tls_keystore_pem': pem('server_pem'),
            'zookeeper_tls_ca_pem': pem('ca'),
            'dragonflow_zk_tls': True,
            'dragonflow_zk_tls_ca_pem': pem('ca'),
            'dragonflow_zk_tls_cert_pem': pem('client_crt'),
            'dragonflow_zk_tls_key_pem': pem('client_key'),
            'dragonflow_zookeeper_hosts': [f'{h}:{port}' for h in zk_hosts]}


def inventory(site_nodes, version, workdir):
    """inventories/lab (hosts and group_vars) in one file, with each
    node's nsenter PID, the version verify.yml expects, and TLS to
    ZooKeeper turned on through the roles' variables."""
    with open(os.path.join(LAB_INVENTORY, 'hosts.yml')) as f:
        data = yaml.safe_load(f)
    with open(os.path.join(LAB_INVENTORY, 'group_vars', 'all.yml')) as f:
        data['all']['vars'] = dict(yaml.safe_load(f),
                                   dragonflow_expected_version=version)
    zk_hosts = [s['host'] for s in data['all']['vars']['zookeeper_servers']]
    data['all']['vars'].update(tls_vars(workdir, zk_hosts))
    for group in data['all']['children'].values():
        for name, host in group['hosts'].items():
            host.update(ansible_nsenter_pid=site_nodes[name].pid1)
    return data


class Site:
    def __init__(self, workdir, site_nodes, inventory_path):
        self.workdir = workdir
        self.nodes = site_nodes
        self.inventory = inventory_path

    def set_host_var(self, host, key, value):
        """Set (or with None remove) a host variable in the inventory."""
        with open(self.inventory) as f:
            data = yaml.safe_load(f)
        for group in data['all']['children'].values():
            if host in group['hosts']:
                if value is None:
                    group['hosts'][host].pop(key, None)
                else:
                    group['hosts'][host][key] = value
        with open(self.inventory, 'w') as f:
            yaml.safe_dump(data, f)

    def playbook(self, name, *extra, check=True):
        env = dict(os.environ, ANSIBLE_FORCE_COLOR='0',
                   ANSIBLE_NOCOLOR='1', ANSIBLE_HOST_KEY_CHECKING='False',
                   ANSIBLE_ROLES_PATH=os.path.join(ROOT, 'roles'),
                   PYTHONPATH=os.path.join(ROOT, 'agent'))
        proc = subprocess.run(
            ['ansible-playbook', '-i', self.inventory,
             os.path.join(ROOT, 'playbooks', name), *extra],
            capture_output=True, text=True, env=env, timeout=1200, cwd=ROOT)
        if check:
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
        return proc


@pytest.fixture(scope='module')
def site(dist):
    workdir = tempfile.mkdtemp(prefix='df-site-')
    image = nodes.NodeImage().build(log=os.path.join(workdir, 'image.log'))
    subprocess.run(['ip', 'link', 'add', BRIDGE, 'type', 'bridge'],
                   check=True)
    subprocess.run(['ip', 'addr', 'add', f'{SUBNET}.1/24', 'dev', BRIDGE],
                   check=True)
    subprocess.run(['ip', 'link', 'set', BRIDGE, 'up'], check=True)
    site_nodes = {}
    try:
        for name, (machine, last, _) in NODES.items():
            site_nodes[name] = nodes.Node(
                image, machine, workdir, bridge=BRIDGE,
                node_ip=f'{SUBNET}.{last}', prefixlen=24,
                binds={os.path.join(dist, 'deb'): '/srv/dragonflow-repo'})
            site_nodes[name].boot()
        path = os.path.join(workdir, 'inventory.yml')
        with open(path, 'w') as f:
            yaml.safe_dump(inventory(site_nodes,
                                     __import__('dragonflow').__version__,
                                     workdir), f)
        yield Site(workdir, site_nodes, path)
    finally:
        # Computes first: their daemons say goodbye to ZooKeeper.
        for node in reversed(list(site_nodes.values())):
            node.stop()
        subprocess.run(['ip', 'link', 'del', BRIDGE], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def recap(output):
    """{host: changed count} from a PLAY RECAP."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)', output, re.M)}


def test_bad_variables_are_refused_before_anything_changes(site):
    proc = site.playbook('site.yml', '-e', 'dragonflow_flavour=bogus',
                         '--limit', 'compute1', check=False)
    assert proc.returncode != 0
    assert 'value of dragonflow_flavour must be one of' in proc.stdout, \
        proc.stdout[-3000:]
    assert re.search(r'compute1\s+: ok=\d+\s+changed=0', proc.stdout)


def test_site_deploys_and_a_second_run_changes_nothing(site):
    first = site.playbook('site.yml')
    assert set(recap(first.stdout)) == set(NODES)
    second = site.playbook('site.yml')
    assert recap(second.stdout) == {name: 0 for name in NODES}, \
        second.stdout[-3000:]
    # TLS to ZooKeeper, turned on by the roles: every client of the site
    # (agents, df-bgp, dfctl) goes to the TLS port with its certificate.
    c1 = site.nodes['compute1']
    ini = c1.run('cat', '/etc/dragonflow/dragonflow.ini')
    assert 'zk_use_ssl = true' in ini and '172.30.210.10:2182' in ini
    assert c1.run('stat', '-c', '%a %U:%G',
                  '/etc/dragonflow/zk-client.key').strip() == \
        '640 root:dragonflow'
    services = json.loads(c1.run('dfctl', '--json', 'service', 'list'))
    assert {s['chassis'] for s in services if s['state'] == 'up' and
            s['binary'] == 'df-local-controller'} == {'compute1',
                                                      'compute2'}


def _installed(node, package):
    return node.run('dpkg-query', '-W', '-f', '${db:Status-Abbrev}',
                    package, check=False).startswith('ii')


def _active(node, unit):
    return node.run('systemctl', 'is-active', unit,
                    check=False).strip() == 'active'


def test_unreachable_zookeeper_fails_at_the_wait_step(site):
    proc = site.playbook(
        'site.yml', '--limit', 'compute1', '-e',
        json.dumps({'dragonflow_zookeeper_hosts': [f'{SUBNET}.99:2181'],
                    'dragonflow_zookeeper_wait_timeout': 2}), check=False)
    assert proc.returncode != 0
    assert 'TASK [dragonflow : Wait for ZooKeeper]' in proc.stdout
    assert f'ZooKeeper at {SUBNET}.99:2181 did not answer' in proc.stdout


BIRD_IP = f'{SUBNET}.2'
BIRD_CONF = f"""router id {BIRD_IP};
protocol device {{}}
protocol bgp dragonflow {{
  local {BIRD_IP} as 65000;
  neighbor {SUBNET}.11 as 64512;
  hold time 9; keepalive time 3; connect retry time 2;
  ipv4 {{ import all; export none; }};
}}
"""


@pytest.fixture(scope='module')
def bird(site):
    """A BIRD 2 router in its own namespace on the nodes' bridge."""
    if not shutil.which('bird'):
        pytest.skip('needs BIRD 2 (bird2)')
    ns, workdir = 'dfn-bird', os.path.join(site.workdir, 'bird')
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, 'bird.conf'), 'w') as f:
        f.write(BIRD_CONF)
    run = (lambda *cmd: subprocess.run(cmd, check=True, capture_output=True,
                                       text=True).stdout)
    try:
        run('ip', 'netns', 'add', ns)
        run('ip', 'link', 'add', 'dfn-bird', 'type', 'veth', 'peer', 'name',
            'ext0', 'netns', ns)
        run('ip', 'link', 'set', 'dfn-bird', 'master', BRIDGE, 'up')
        run('ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', f'{BIRD_IP}/24',
            'dev', 'ext0')
        run('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'ext0', 'up')
        # Its TCP crosses the computes' userspace datapath (see LAB notes).
        run('ip', 'netns', 'exec', ns, 'ethtool', '-K', 'ext0', 'tx', 'off')
        run('ip', 'netns', 'exec', ns, 'bird', '-c', f'{workdir}/bird.conf',
            '-s', f'{workdir}/bird.ctl', '-P', f'{workdir}/bird.pid')
        yield lambda *args: run('birdc', '-s', f'{workdir}/bird.ctl', *args)
    finally:
        try:
            with open(f'{workdir}/bird.pid') as f:
                os.kill(int(f.read().strip()), 15)
        except (OSError, ValueError):
            pass
        subprocess.run(['ip', 'netns', 'del', ns], check=False)
        subprocess.run(['ip', 'link', 'del', 'dfn-bird'], check=False)


def test_bgp_speaker_node_advertises_to_bird(site, bird):
    c1 = site.nodes['compute1']

    def dfctl(*args):
        return json.loads(c1.run('dfctl', '--json', *args))
    dfctl('network', 'create', '--name', 'public', '--external', 'true',
          '--network-type', 'flat', '--physical-network', 'public')
    dfctl('subnet', 'create', '--name', 'public-v4', '--network-id', 'public',
          '--cidr', f'{SUBNET}.0/24', '--gateway-ip', f'{SUBNET}.1')
    dfctl('network', 'create', '--name', 'tenant')
    dfctl('subnet', 'create', '--name', 'tenant-v4', '--network-id',
          'tenant', '--cidr', '10.91.0.0/24')
    public = dfctl('network', 'show', 'public')['id']
    dfctl('router', 'create', '--name', 'edge', '--external-gateway',
          f'network_id={public},ip={SUBNET}.50')
    dfctl('router-interface', 'create', '--router-id', 'edge',
          '--subnet-id', 'tenant-v4')
    dfctl('bgp-peer', 'create', '--name', 'bird', '--peer-ip', BIRD_IP,
          '--remote-as', '65000')
    dfctl('bgp-speaker', 'create', '--name', 'site', '--local-as', '64512',
          '--peers', 'bird', '--networks', 'public')
    try:
        wait_until(lambda: 'Established' in bird('show', 'protocols',
                                                 'dragonflow'),
                   timeout=60, interval=0.5, message='BGP session with BIRD')
    except AssertionError:
        journal = c1.run('journalctl', '-u', 'df-bgp', '--no-pager', '-n',
                         '30', check=False)
        raise AssertionError(f'no BGP session; df-bgp journal:\n{journal}')
    wait_until(lambda: '10.91.0.0/24' in bird('show', 'route'), timeout=30,
               interval=0.5, message='tenant prefix on BIRD')
    assert f'via {SUBNET}.50' in bird('show', 'route', 'for', '10.91.0.1')
    # systemctl restart df-bgp: graceful restart keeps the route on BIRD
    # (sampled every 50 ms until the new session is up again).
    c1.run('systemctl', 'restart', 'df-bgp')
    missing, samples, deadline = 0, 0, time.monotonic() + 60
    while time.monotonic() < deadline:
        routes = bird('show', 'route')
        samples += 1
        missing += '10.91.0.0/24' not in routes
        if samples > 20 and 'Established' in bird('show', 'protocols',
                                                   'dragonflow'):
            break
        time.sleep(0.05)
    assert missing == 0, f'route missing in {missing} of {samples} samples'


def test_vms_on_two_nodes_ping_and_verify_passes(site):
    c1, c2 = site.nodes['compute1'], site.nodes['compute2']

    def dfctl(*args):
        return json.loads(c1.run('dfctl', '--json', *args))
    dfctl('network', 'create', '--name', 'site-net')
    subnet = dfctl('subnet', 'create', '--network-id', 'site-net', '--cidr',
                   '10.90.0.0/24')
    vms = []
    for node, name in ((c1, 'vm1'), (c2, 'vm2')):
        port = dfctl('port', 'create', '--network-id', 'site-net',
                     '--name', name)
        node.run('ip', 'netns', 'add', name)
        node.run('ip', 'link', 'add', f'tap{name}', 'type', 'veth', 'peer',
                 'name', 'eth0', 'netns', name)
        node.run('ip', 'netns', 'exec', name, 'ip', 'link', 'set', 'eth0',
                 'address', port['macs'][0], 'mtu', '1400', 'up')
        node.run('ip', 'netns', 'exec', name, 'ip', 'addr', 'add',
                 f'{port["ips"][0]}/24', 'dev', 'eth0')
        node.run('ip', 'netns', 'exec', name, 'ethtool', '-K', 'eth0', 'tx',
                 'off')
        node.run('ip', 'link', 'set', f'tap{name}', 'up')
        node.run('ovs-vsctl', 'add-port', 'br-int', f'tap{name}', '--', 'set',
                 'Interface', f'tap{name}',
                 f'external_ids:iface-id={port["id"]}')
        vms.append((node, name, port))
    target = vms[1][2]['ips'][0]
    wait_until(lambda: c1.run('ip', 'netns', 'exec', 'vm1', 'ping', '-c', '1',
                              '-W', '1', target,
                              check=False).count(' 0% packet'),
               timeout=30, interval=0.5,
               message='vm1 on compute1 pings vm2 on compute2')
    _load_balancer(c1, c2, dfctl, subnet, vms[1][2])
    # testinfra on every node, ports bound: the flows NB implies are there.
    site.playbook('verify.yml')


def _load_balancer(c1, c2, dfctl, subnet, member):
    """A VIP balanced by the packaged agents, with a health monitor
    whose prober (a process in its own network namespace) runs under the
    unit's hardening: the member ONLINE, vm1 served through the VIP."""
    c2.write('/root/named_server.py', netlab.NAMED_SERVER)
    c2.run('systemd-run', '--unit', 'df-test-server', 'ip', 'netns', 'exec',
           'vm2', 'python3', '/root/named_server.py', 'vm2', '8080')
    lb = dfctl('loadbalancer', 'create', '--name', 'site-lb',
               '--vip-subnet-id', subnet['id'])
    dfctl('pool', 'create', '--name', 'site-pool', '--loadbalancer-id',
          'site-lb', '--protocol', 'TCP', '--lb-algorithm', 'ROUND_ROBIN')
    dfctl('listener', 'create', '--loadbalancer-id', 'site-lb', '--protocol',
          'TCP', '--protocol-port', '80', '--default-pool-id', 'site-pool')
    dfctl('member', 'create', '--pool-id', 'site-pool', '--address',
          member['ips'][0], '--protocol-port', '8080')
    dfctl('healthmonitor', 'create', '--pool-id', 'site-pool', '--type',
          'TCP', '--delay', '1', '--timeout', '1', '--max-retries', '1')
    wait_until(lambda: [m['operating_status'] for m in
                        dfctl('member', 'list')] == ['ONLINE'],
               timeout=60, interval=1,
               message='the member ONLINE, probed by compute2\'s agent')

    def served():
        out = c1.run('ip', 'netns', 'exec', 'vm1', 'python3', '-c',
                     netlab.CONNECT_MANY, lb['vip_address'], '80', '5', 'tcp',
                     check=False)
        return out.strip() and json.loads(out) == {'vm2': 5}
    wait_until(served, timeout=30, interval=1,
               message='vm1 served by vm2 through the VIP')


def test_flavour_switch_on_a_node_then_verify(site):
    """compute2 becomes an L3-flavour node (its inventory says so, as an
    operator would write it), verify.yml passes with it, then back."""
    node = site.nodes['compute2']
    site.set_host_var('compute2', 'dragonflow_flavour', 'l3')
    l3 = site.playbook('site.yml', '--limit', 'compute2')
    assert recap(l3.stdout)['compute2'] > 0
    assert _installed(node, 'dragonflow-l3-agent')
    assert not _installed(node, 'dragonflow-controller')
    wait_until(lambda: _active(node, 'df-l3-agent'), timeout=60,
               interval=0.5, message='df-l3-agent active')
    assert 'l2_normal' in node.run('cat', '/etc/dragonflow/l3-agent.ini')
    # Its flows hand the rest to NORMAL (table 0's default).
    wait_until(lambda: 'actions=NORMAL' in node.run(
        'ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', 'br-int'),
        timeout=30, interval=0.5, message='L3 flavour flows')
    again = site.playbook('site.yml', '--limit', 'compute2')
    assert recap(again.stdout) == {'compute2': 0}, again.stdout[-3000:]
    site.playbook('verify.yml')
    # And back.
    site.set_host_var('compute2', 'dragonflow_flavour', None)
    site.playbook('site.yml', '--limit', 'compute2')
    assert _installed(node, 'dragonflow-controller')
    assert not _installed(node, 'dragonflow-l3-agent')
    wait_until(lambda: _active(node, 'df-local-controller'), timeout=60,
               interval=0.5, message='df-local-controller active again')
    assert not _active(node, 'df-l3-agent')


def test_losing_a_zookeeper_node_keeps_the_deployment_working(site):
    """Fault variant: one of the three ZooKeeper nodes goes away; the NB
    still takes writes, agents keep reporting, VMs keep talking."""
    c1 = site.nodes['compute1']
    zk_modes = {name: site.nodes[name].run(
        'python3', '-c', "import socket; s=socket.create_connection(("
        f"'{SUBNET}.{NODES[name][1]}', 2181)); s.sendall(b'srvr'); "
        "print(s.recv(4096).decode())") for name in ('zk1', 'zk2', 'zk3')}
    leader = next(n for n, out in zk_modes.items() if 'Mode: leader' in out)
    site.nodes[leader].stop()

    def dfctl(*args):
        """dfctl --json output, or None if the call failed."""
        out = c1.run('dfctl', '--json', *args, check=False)
        return json.loads(out) if out else None

    # Writable once the two survivors have elected a leader...
    wait_until(lambda: dfctl('network', 'create', '--name', 'after-zk-loss'),
               timeout=60, interval=1,
               message=f'NB writable without {leader}')
    # ...and then every dfctl call works at once (the dead member is
    # skipped quickly).
    assert any(n['name'] == 'after-zk-loss' for n in dfctl('network', 'list'))
    wait_until(lambda: all(c['state'] == 'up' for c in
                           dfctl('chassis', 'list') or [{}]), timeout=60,
               interval=1, message='chassis still reported up')
    target = [p for p in dfctl('port', 'list') if p['name'] == 'vm2'][0]
    for _ in range(5):
        assert dfctl('chassis', 'list'), 'dfctl with one member down'
    wait_until(lambda: ' 0% packet loss' in c1.run(
        'ip', 'netns', 'exec', 'vm1', 'ping', '-c', '1', '-W', '1',
        target['ips'][0], check=False), timeout=30, interval=0.5,
        message='VMs still talk')
