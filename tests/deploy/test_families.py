"""The roles' choices per OS family. Debian is deployed for real by
test_site.py; no RHEL node can be booted here, so the RedHat path is
checked by resolving the roles' variables and rendering their templates
with RedHat facts, and its packages by resolving them from the yum
repository (tests/packaging)."""
import json
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

if not shutil.which('ansible-playbook'):
    pytest.skip('ansible missing (make packaging-deps)',
                allow_module_level=True)

EXPECTED = {
    'Debian': {'zookeeper': ['zookeeper', 'default-jre-headless'],
               'openvswitch': ['openvswitch-switch'],
               'openvswitch_service': 'openvswitch-switch'},
    'RedHat': {'zookeeper': ['zookeeper', 'java-17-openjdk-headless'],
               'openvswitch': ['openvswitch'],
               'openvswitch_service': 'openvswitch'},
}


@pytest.mark.parametrize('family', sorted(EXPECTED))
def test_roles_resolve_per_family(family, tmp_path):
    proc = subprocess.run(
        ['ansible-playbook', os.path.join(ROOT, 'tests', 'deploy',
                                          'family.yml'),
         '-e', f'family={family}', '-e', f'out={tmp_path}', '-e',
         json.dumps({'dragonflow_zookeeper_hosts': ['10.0.0.5:2181'],
                     'dragonflow_local_ip': '10.1.0.21',
                     'dragonflow_cni': True,
                     'dragonflow_cni_network': 'blue',
                     'dragonflow_cni_security_groups': ['web']})],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    names = json.loads((tmp_path / 'names.json').read_text())
    for key, value in EXPECTED[family].items():
        assert names[key] == value, key
    assert names['dragonflow'] == ['dragonflow-controller']
    assert names['dragonflow_service'] == 'df-local-controller'
    ini = (tmp_path / 'dragonflow.ini').read_text()
    assert 'remote_db_hosts = 10.0.0.5:2181' in ini
    assert 'local_ip = 10.1.0.21' in ini
    assert 'apps_list = classifier,port_security,arp_responder,dhcp,l2,' \
        'tunneling,l3,security_groups,provider,nat,router_icmp,' \
        'nd_responder,router_advertisement,sfc,dhcpv6,lb,fwaas,tap,multicast' in ini
    conflist = json.loads((tmp_path / 'dragonflow.conflist').read_text())
    assert conflist == {'cniVersion': '1.0.0', 'name': 'dragonflow',
                        'plugins': [{
                            'type': 'dragonflow', 'network': 'blue',
                            'security_groups': ['web'],
                            'config_file': '/etc/dragonflow/dragonflow.ini'}]}
    unit = (tmp_path / 'zookeeper.service').read_text()
    classpath = '/usr/share/java/zookeeper' if family == 'RedHat' else \
        '/usr/share/java/zookeeper.jar'
    assert classpath in unit


def check_mode_role(tmp_path, role, extra):
    """Run a role in check mode on localhost with extra variables:
    (the process, its output)."""
    play = tmp_path / 'play.yml'
    play.write_text(f'''
- hosts: localhost
  connection: local
  gather_facts: false
  check_mode: true
  tasks:
    - ansible.builtin.include_role:
        name: {ROOT}/roles/{role}
''')
    proc = subprocess.run(['ansible-playbook', str(play), '-e',
                           json.dumps(extra)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    return proc, proc.stdout + proc.stderr


@pytest.mark.parametrize('hosts,message', [
    ([], 'dragonflow_zookeeper_hosts must list at least one ZooKeeper'),
    (['zk1:2181', 'zk2:21x'], "got ['zk1:2181', 'zk2:21x']"),
    (None, 'missing required arguments: dragonflow_zookeeper_hosts'),
])
def test_the_role_refuses_bad_zookeeper_hosts_before_any_change(
        tmp_path, hosts, message):
    extra = {'dragonflow_local_ip': '10.1.0.21'}
    if hosts is not None:
        extra['dragonflow_zookeeper_hosts'] = hosts
    proc, out = check_mode_role(tmp_path, 'dragonflow', extra)
    assert proc.returncode != 0 and message in out
    # Nothing ran past the checks: no task changed or even got to run.
    assert 'changed=0' in out and 'Package repository' not in out


def test_tls_to_zookeeper_renders_on_both_sides(tmp_path):
    pem = '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n'
    proc = subprocess.run(
        ['ansible-playbook', os.path.join(ROOT, 'tests', 'deploy',
                                          'family.yml'),
         '-e', 'family=Debian', '-e', f'out={tmp_path}', '-e',
         json.dumps({'dragonflow_zookeeper_hosts': ['10.0.0.5:2182'],
                     'dragonflow_local_ip': '10.1.0.21',
                     'dragonflow_zk_tls': True,
                     'dragonflow_zk_tls_ca_pem': pem,
                     'dragonflow_zk_tls_cert_pem': pem,
                     'dragonflow_zk_tls_key_pem': 'secret',
                     'zookeeper_tls_port': 2182})],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    ini = (tmp_path / 'dragonflow.ini').read_text()
    for line in ('zk_use_ssl = true', 'zk_ca = /etc/dragonflow/zk-ca.pem',
                 'zk_certfile = /etc/dragonflow/zk-client.pem',
                 'zk_keyfile = /etc/dragonflow/zk-client.key'):
        assert line in ini
    cfg = (tmp_path / 'zoo.cfg').read_text()
    for line in ('secureClientPort=2182', 'ssl.clientAuth=need',
                 'serverCnxnFactory=org.apache.zookeeper.server.'
                 'NettyServerCnxnFactory', 'ssl.keyStore.type=PEM'):
        assert line in cfg


@pytest.mark.parametrize('role, extra, message', [
    ('dragonflow', {'dragonflow_zk_tls': True},
     'dragonflow_zk_tls needs dragonflow_zk_tls_ca_pem'),
    ('dragonflow', {'dragonflow_zk_tls': True,
                    'dragonflow_zk_tls_ca_pem': '-----BEGIN CERTIFICATE-----',
                    'dragonflow_zk_tls_key_pem': 'k'},
     'dragonflow_zk_tls_cert_pem and dragonflow_zk_tls_key_pem together'),
    ('zookeeper', {'zookeeper_tls_port': 2182},
     'zookeeper_tls_port is set: zookeeper_tls_keystore_pem must hold'),
    ('dragonflow', {'dragonflow_cni': True},
     'dragonflow_cni needs dragonflow_cni_network'),
])
def test_tls_settings_are_checked_before_any_change(tmp_path, role, extra,
                                                     message):
    proc, out = check_mode_role(tmp_path, role, dict(
        extra, dragonflow_local_ip='10.1.0.21',
        dragonflow_zookeeper_hosts=['10.0.0.5:2182']))
    assert proc.returncode != 0 and message in out, out[-2000:]
    assert 'changed=0' in out
