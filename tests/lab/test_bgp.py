"""df-bgp against a real BIRD 2: the session comes up, tenant prefixes are
advertised with the router gateway as next hop and floating IP /32s with
the chassis' external address; a deleted floating IP is withdrawn."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from dragonflow.lab.netlab import AGENT_DIR, kill_pid, sh
from waiting import wait_until

if not shutil.which('bird'):
    pytest.skip('needs BIRD 2 (bird2)', allow_module_level=True)

BIRD_CONF = """router id 172.24.4.1;
protocol device {}
protocol bgp dragonflow {
  local 172.24.4.1 as 65000;
  neighbor 172.24.4.254 as 64512;
  hold time 9; keepalive time 3; connect retry time 2;
  ipv4 { import all; export none; };
}
"""


@pytest.fixture(scope='module')
def bgp_lab(lab):
    """A namespace for df-bgp on the underlay, and one for BIRD, joined by
    a link on the external network 172.24.4.0/24."""
    speaker_ns, bird_ns = f'{lab.prefix}-bgp', f'{lab.prefix}-bird'
    workdir = os.path.join(lab.dir, 'bgp')
    os.makedirs(workdir, exist_ok=True)
    procs = []
    try:
        for ns in (speaker_ns, bird_ns):
            sh('ip', 'netns', 'add', ns)
            sh('ip', 'link', 'set', 'lo', 'up', ns=ns)
        underlay_ip = lab.chassis_ip(49)
        root_end = f'{lab.prefix}bgp'[:15]
        sh('ip', 'link', 'add', root_end, 'type', 'veth', 'peer', 'name',
           'ul0', 'netns', speaker_ns)
        sh('ip', 'link', 'set', root_end, 'master', lab.bridge, 'up')
        sh('ip', 'addr', 'add', f'{underlay_ip}/{lab.underlay.prefixlen}',
           'dev', 'ul0', ns=speaker_ns)
        sh('ip', 'link', 'set', 'ul0', 'up', ns=speaker_ns)
        sh('ip', 'link', 'add', 'ext0', 'netns', speaker_ns, 'type', 'veth',
           'peer', 'name', 'ext0', 'netns', bird_ns)
        for ns, ip in ((speaker_ns, '172.24.4.254'), (bird_ns, '172.24.4.1')):
            sh('ip', 'addr', 'add', f'{ip}/24', 'dev', 'ext0', ns=ns)
            sh('ip', 'link', 'set', 'ext0', 'up', ns=ns)
        with open(os.path.join(workdir, 'bird.conf'), 'w') as f:
            f.write(BIRD_CONF)
        sh('bird', '-c', f'{workdir}/bird.conf', '-s', f'{workdir}/bird.ctl',
           '-P', f'{workdir}/bird.pid', ns=bird_ns)
        config = os.path.join(workdir, 'df-bgp.ini')
        with open(config, 'w') as f:
            f.write(f'[df]\nremote_db_hosts = {lab.zk_address}\n'
                    f'host = bgp1\n'
                    '[df_bgp]\nlisten_port = 0\nrouter_id = 172.24.4.254\n'
                    'status_interval = 1\n')
        log = open(os.path.join(workdir, 'df-bgp.log'), 'ab')
        procs.append(subprocess.Popen(
            ['ip', 'netns', 'exec', speaker_ns, sys.executable, '-m',
             'dragonflow.bgp.service', '--config-file', config],
            stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=AGENT_DIR)))
        yield workdir
    finally:
        for proc in procs:
            kill_pid(proc.pid)
            proc.wait()
        try:
            with open(os.path.join(workdir, 'bird.pid')) as f:
                kill_pid(int(f.read().strip()))
        except (OSError, ValueError):
            pass
        for ns in (speaker_ns, bird_ns):
            sh('ip', 'netns', 'del', ns, check=False)
        sh('ip', 'link', 'del', f'{lab.prefix}bgp'[:15], check=False)


def birdc(workdir, *args):
    return sh('birdc', '-s', f'{workdir}/bird.ctl', *args)


def test_routes_reach_bird_and_withdraw(bgp_lab, lab_nb, dfctl_lab):
    nb = lab_nb
    ext = nb.create('logical_switch', {'name': 'public', 'external': True,
                                       'network_type': 'flat',
                                       'physical_network': 'public'})
    nb.create('subnet', {'network_id': ext.id, 'cidr': '172.24.4.0/24'})
    tenant = nb.create('logical_switch', {'name': 'tenant-bgp'})
    subnet = nb.create('subnet', {'network_id': tenant.id,
                                  'cidr': '10.60.0.0/24'})
    router = nb.create('logical_router', {
        'name': 'r-bgp', 'external_gateway': {'network_id': ext.id}})
    nb.create('logical_router_port', {'router_id': router.id,
                                      'subnet_id': subnet.id})
    gateway = router.external_gateway['ip']
    peer = nb.create('bgp_peer', {'peer_ip': '172.24.4.1',
                                  'remote_as': 65000})
    speaker = nb.create('bgp_speaker', {'local_as': 64512,
                                        'peers': [peer.id],
                                        'networks': [ext.id]})
    try:
        try:
            wait_until(lambda: 'Established' in birdc(
                bgp_lab, 'show', 'protocols', 'dragonflow'),
                timeout=30, message='BGP session established')
        except AssertionError:
            with open(os.path.join(bgp_lab, 'df-bgp.log')) as f:
                raise AssertionError('no BGP session; df-bgp log:\n' +
                                     f.read()[-3000:]) from None
        wait_until(lambda: '10.60.0.0/24' in birdc(bgp_lab, 'show', 'route')
                   and f'via {gateway}' in birdc(bgp_lab, 'show', 'route'),
                   timeout=15, message='tenant prefix on BIRD')
        nb.patch('chassis', 'ch1', {'external_host_ip': '172.24.4.101'})
        port = nb.create('logical_port', {'network_id': tenant.id,
                                          'binding_chassis': 'ch1'})
        fip = nb.create('floating_ip', {'floating_network_id': ext.id,
                                        'port_id': port.id})
        host_route = f'{fip.floating_ip_address}/32'
        wait_until(lambda: host_route in birdc(bgp_lab, 'show', 'route'),
                   timeout=15, message='floating IP /32 on BIRD')
        assert 'via 172.24.4.101' in birdc(bgp_lab, 'show', 'route', 'for',
                                           fip.floating_ip_address)
        status = json.loads(dfctl_lab('--json', 'bgp', 'status'))
        assert status[0]['peers'][0]['state'] == 'Established'
        assert {'prefix': '10.60.0.0/24', 'next_hop': gateway} in \
            status[0]['routes']
        start = time.monotonic()
        nb.delete('floating_ip', fip.id)
        wait_until(lambda: host_route not in birdc(bgp_lab, 'show', 'route'),
                   timeout=5, interval=0.05,
                   message='floating IP withdrawn within 5 s')
        print(f'withdrawn after {time.monotonic() - start:.2f} s')
    finally:
        nb.delete('bgp_speaker', speaker.id)
        nb.delete('bgp_peer', peer.id)
        nb.delete('logical_router', router.id, cascade=True)
        nb.delete('logical_switch', tenant.id, cascade=True)
        nb.delete('logical_switch', ext.id, cascade=True)
