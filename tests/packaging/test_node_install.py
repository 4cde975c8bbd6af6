"""The DEB packages on a clean, systemd-booted Debian 12 node: install from
the local apt repository, service enabled and active (and registered in a
real ZooKeeper), upgrade keeping a modified conffile and restarting the
service, purge leaving nothing behind."""
import os
import shutil
import tempfile

import pytest

from lab_harness import nodes
from lab_harness.zookeeper import ZkServer
from waiting import wait_until

HOST_IP, NODE_IP = '172.30.201.1', '172.30.201.2'

if os.geteuid() != 0 or not shutil.which('systemd-nspawn') or \
        not shutil.which('debootstrap'):
    pytest.skip('needs root, systemd-nspawn and debootstrap',
                allow_module_level=True)


@pytest.fixture(scope='module')
def node(dist, dist_next):
    workdir = tempfile.mkdtemp(prefix='df-node-')
    image = nodes.NodeImage().build(log=os.path.join(workdir, 'image.log'))
    next_dist, _ = dist_next
    machine = nodes.Node(image, 'dfpkg1', workdir,
                         binds={os.path.join(dist, 'deb'): '/srv/repo-v1',
                                os.path.join(next_dist, 'deb'): '/srv/repo-v2'},
                         host_ip=HOST_IP, node_ip=NODE_IP)
    zk = None
    try:
        machine.boot()
        zk = ZkServer(os.path.join(workdir, 'zk'), host=HOST_IP,
                      port=2181).start().wait_ready()
        yield machine
    finally:
        machine.stop()
        if zk is not None:
            zk.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def use_repo(node, name):
    node.write('/etc/apt/sources.list.d/dragonflow.list',
               f'deb [trusted=yes] file:/srv/{name} ./\n')
    node.run('apt-get', 'update', '-q')


def service(node, prop):
    return node.run('systemctl', 'show', '-p', prop, '--value',
                    'df-local-controller').strip()


def test_install_upgrade_purge(node, dist_next):
    _, next_version = dist_next
    version = __import__('dragonflow').__version__
    # Site settings in a snippet, as a deployment tool would write them.
    node.write('/etc/dragonflow/dragonflow.ini.d/node.conf',
               f'[df]\nremote_db_hosts = {HOST_IP}:2181\n'
               f'local_ip = {NODE_IP}\ndatapath_type = netdev\n')
    node.run('systemctl', 'start', 'openvswitch-switch')
    use_repo(node, 'repo-v1')
    node.run('apt-get', 'install', '-y', '-q', 'dragonflow-controller')

    # Installed, conffile marked, user, unit enabled and active.
    assert node.run('dpkg-query', '-W', '-f=${Version}',
                    'dragonflow-controller') == version
    assert '/etc/dragonflow/dragonflow.ini' in node.run(
        'dpkg-query', '-W', '-f=${Conffiles}', 'dragonflow-common')
    assert 'dragonflow' in node.run('id', 'dragonflow')
    # The config may hold ZooKeeper credentials.
    assert node.run('stat', '-c', '%U %G %a',
                    '/etc/dragonflow/dragonflow.ini').split() == [
        'root', 'dragonflow', '640']
    assert node.run('systemctl', 'is-enabled',
                    'df-local-controller').strip() == 'enabled'
    wait_until(lambda: service(node, 'ActiveState') == 'active',
               timeout=60, interval=0.5, message='df-local-controller active')
    assert 'usage: dfctl' in node.run('dfctl', '--help')
    # The service really works: the chassis registered itself and is up.
    wait_until(lambda: ' up ' in node.run('dfctl', 'chassis', 'list',
                                          check=False),
               timeout=60, interval=0.5, message='chassis up')
    pid_before = service(node, 'MainPID')

    # Upgrade with an admin-modified conffile: kept, with the group the
    # admin gave it; service restarted.
    node.run('sh', '-c', 'echo "# site note" >> /etc/dragonflow/dragonflow.ini')
    node.run('chgrp', 'adm', '/etc/dragonflow/dragonflow.ini')
    use_repo(node, 'repo-v2')
    node.run('apt-get', 'install', '-y', '-q', '-o',
             'Dpkg::Options::=--force-confold', 'dragonflow-controller')
    assert node.run('dpkg-query', '-W', '-f=${Version}',
                    'dragonflow-controller') == next_version
    assert '# site note' in node.run('cat', '/etc/dragonflow/dragonflow.ini')
    assert node.run('stat', '-c', '%G', '/etc/dragonflow/dragonflow.ini'
                    ).strip() == 'adm'
    wait_until(lambda: service(node, 'ActiveState') == 'active',
               timeout=60, interval=0.5, message='active after upgrade')
    assert service(node, 'MainPID') not in (pid_before, '0')

    # Remove and purge: nothing left behind.
    node.run('apt-get', 'purge', '-y', '-q', 'dragonflow-controller',
             'dragonflow-common', 'python3-dragonflow')
    assert 'dragonflow' not in node.run('sh', '-c',
                                        'dpkg -l | grep "^ii" || true')
    for path in ('/etc/dragonflow/dragonflow.ini', '/var/lib/dragonflow',
                 '/lib/systemd/system/df-local-controller.service',
                 '/usr/bin/dfctl'):
        assert node.run('sh', '-c', f'test -e {path} && echo present || '
                        'echo absent').strip() == 'absent', path
