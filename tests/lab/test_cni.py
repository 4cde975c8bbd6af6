"""The CNI plugin driven as a container runtime drives it (exec with the
CNI_* environment and the network config on stdin, on a lab chassis):
ADD gives a container namespace a port that pings a VM on another
chassis, with the result the spec describes; CHECK verifies it; DEL
removes exactly what ADD made, also repeated or after the namespace is
gone; bad configurations get the spec's error JSON with the right code,
exit non-zero and leave nothing behind in NB or OVS."""
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from lab_harness.netlab import AGENT_DIR
from test_l2 import pings


class Container:
    """A network namespace standing for a container's sandbox."""

    def __init__(self, lab):
        self.id = uuid.uuid4().hex
        self.name = f'{lab.prefix}-c{self.id[:8]}'
        subprocess.run(['ip', 'netns', 'add', self.name], check=True)
        self.netns = f'/var/run/netns/{self.name}'

    def ping(self, ip):
        return subprocess.run(['ip', 'netns', 'exec', self.name, 'ping',
                               '-c', '1', '-W', '1', ip],
                              capture_output=True).returncode == 0

    def remove(self):
        subprocess.run(['ip', 'netns', 'del', self.name], check=False)


@pytest.fixture
def containers(lab):
    made = []

    def make():
        made.append(Container(lab))
        return made[-1]
    yield make
    for container in made:
        container.remove()


def cni(chassis, command, container=None, config=None, ifname='eth0',
        args='', netns=None):
    """(exit code, parsed stdout) of the plugin run on chassis."""
    env = dict(os.environ, PYTHONPATH=AGENT_DIR, CNI_COMMAND=command,
               CNI_IFNAME=ifname, CNI_PATH='/usr/lib/cni', CNI_ARGS=args)
    if container is not None:
        env.update(CNI_CONTAINERID=container.id,
                   CNI_NETNS=netns or container.netns)
    started = time.monotonic()
    proc = subprocess.run(
        ['ip', 'netns', 'exec', chassis.ns, sys.executable, '-m',
         'dragonflow.cni.plugin'], input=json.dumps(config or {}).encode(),
        capture_output=True, env=env, timeout=120)
    out = json.loads(proc.stdout) if proc.stdout.strip() else None
    cni.elapsed = time.monotonic() - started
    assert out is not None or proc.returncode == 0, proc.stderr.decode()
    return proc.returncode, out


def config_for(chassis, net, **fields):
    return dict({'cniVersion': '1.0.0', 'name': 'dfnet',
                 'type': 'dragonflow', 'network': net,
                 'config_file': os.path.join(chassis.dir, 'dragonflow.ini'),
                 'timeout': 20}, **fields)


def ovs_ports(chassis):
    return subprocess.run(
        ['ovs-vsctl', f'--db=unix:{chassis.dir}/db.sock', 'list-ports',
         'br-int'], capture_output=True, text=True, check=True).stdout.split()


def cni_ports(nb):
    return [p for p in nb.list('logical_port') if p.device_owner == 'cni']


def test_add_check_del_as_a_runtime_does(lab, lab_nb, topo, containers):
    net = topo.network('10.101.0.0/24')
    vm = topo.vm(net, 'ch2')
    ch1 = lab.chassis['ch1']
    box = containers()
    config = config_for(ch1, net.name)
    rc, result = cni(ch1, 'ADD', box, config,
                     args='K8S_POD_NAMESPACE=web;K8S_POD_NAME=front-1')
    assert rc == 0, result
    port, = cni_ports(lab_nb)
    assert port.name == 'web/front-1'
    assert port.binding_chassis == 'ch1'
    assert result['cniVersion'] == '1.0.0'
    assert result['interfaces'] == [{'name': 'eth0', 'mac': port.macs[0],
                                     'sandbox': box.netns}]
    assert result['ips'] == [{'address': f'{port.ips[0]}/24',
                              'gateway': '10.101.0.1', 'interface': 0}]
    assert result['routes'] == [{'dst': '0.0.0.0/0', 'gw': '10.101.0.1'}]
    # Bound and its flows in: the first ping goes through.
    assert box.ping(vm.ip)
    assert pings(vm, port.ips[0])
    assert cni(ch1, 'CHECK', box, config) == (0, None)
    assert cni(ch1, 'VERSION') == (0, {
        'cniVersion': '1.0.0', 'supportedVersions': ['0.4.0', '1.0.0']})
    assert cni(ch1, 'DEL', box, config) == (0, None)
    assert cni_ports(lab_nb) == []
    assert not any(p.startswith('dfc') for p in ovs_ports(ch1))
    # DEL again, and DEL once the namespace is gone: both fine.
    assert cni(ch1, 'DEL', box, config) == (0, None)
    box.remove()
    assert cni(ch1, 'DEL', box, config) == (0, None)


def test_an_ip_request_and_a_0_4_0_config(lab, lab_nb, topo, containers):
    net = topo.network('10.102.0.0/24')
    ch2 = lab.chassis['ch2']
    box = containers()
    config = config_for(ch2, net.id, cniVersion='0.4.0', mtu=1400)
    rc, result = cni(ch2, 'ADD', box, config, args='IP=10.102.0.77')
    assert rc == 0, result
    assert result['ips'] == [{'address': '10.102.0.77/24', 'version': '4',
                              'gateway': '10.102.0.1', 'interface': 0}]
    mtu = subprocess.run(['ip', 'netns', 'exec', box.name, 'cat',
                          '/sys/class/net/eth0/mtu'], capture_output=True,
                         text=True).stdout.strip()
    assert mtu == '1400'
    assert cni(ch2, 'DEL', box, config) == (0, None)


@pytest.mark.parametrize('what, change, code, message', [
    ('a missing network', {'network': None}, 7, 'network: is required'),
    ('an unknown network', {'network': 'nope'}, 7,
     "network: no logical switch 'nope'"),
    ('a field of the wrong type', {'mtu': 'big'}, 7, "mtu: 'big' is not an "
     'integer'),
    ('an unsupported version', {'cniVersion': '0.3.1'}, 1,
     "cniVersion '0.3.1' is not supported"),
    ('an unreachable ZooKeeper', {'zookeeper': '127.0.0.1:1', 'timeout': 2},
     11, 'ZooKeeper unreachable'),
    ('an unknown security group', {'security_groups': ['ghost']}, 7,
     "security_groups: no security group 'ghost'"),
])
def test_bad_configurations_get_the_spec_error_and_leave_nothing(
        lab, lab_nb, topo, containers, what, change, code, message):
    net = topo.network('10.103.0.0/24')
    ch1 = lab.chassis['ch1']
    box = containers()
    config = config_for(ch1, net.id, **change)
    config = {k: v for k, v in config.items() if v is not None}
    before = ovs_ports(ch1)
    rc, error = cni(ch1, 'ADD', box, config)
    assert rc != 0
    assert error['code'] == code and message in error['msg'], error
    assert error['cniVersion']
    assert cni_ports(lab_nb) == []
    assert ovs_ports(ch1) == before


def test_a_port_never_bound_here_gets_try_again_later(
        lab, lab_nb, topo, containers):
    """The plugin told a chassis id no agent runs as: the port is never
    bound to it; the wait is bounded, says what is missing, and nothing
    is left."""
    net = topo.network('10.104.0.0/24')
    ch1 = lab.chassis['ch1']
    box = containers()
    ini = os.path.join(ch1.dir, 'cni-unbound.ini')
    with open(os.path.join(ch1.dir, 'dragonflow.ini')) as f:
        text = f.read().replace('chassis_id = ch1', 'chassis_id = nowhere')
    with open(ini, 'w') as f:
        f.write(text)
    rc, error = cni(ch1, 'ADD', box, config_for(ch1, net.id, timeout=3,
                                                config_file=ini))
    assert rc == 1 and error['code'] == 11, error
    assert 'not bound to chassis nowhere (NB: ch1)' in error['msg']
    assert 'is df-local-controller running on nowhere?' in error['msg']
    assert cni.elapsed < 15
    assert cni_ports(lab_nb) == []
    assert not any(p.startswith('dfc') for p in ovs_ports(ch1))


def test_gc_collects_the_ports_of_containers_that_are_gone(
        lab, lab_nb, topo, containers):
    """Two containers; one's process is killed and its engine never runs
    DEL: gc removes its ports (NB, br-int, veth) and leaves the live one;
    nothing younger than the grace period is taken."""
    net = topo.network('10.105.0.0/24')
    ch1 = lab.chassis['ch1']
    live, dead = containers(), containers()
    config = config_for(ch1, net.id)
    procs = {}
    for box in (live, dead):
        procs[box] = subprocess.Popen(['ip', 'netns', 'exec', box.name,
                                       'sleep', '600'])
        assert cni(ch1, 'ADD', box, config)[0] == 0
    assert len(cni_ports(lab_nb)) == 2
    procs[dead].kill()
    procs[dead].wait()
    # Within the grace period: nothing.
    assert json.loads(ch1.dfctl('--json', 'cni', 'gc')) == []
    out = json.loads(ch1.dfctl('--json', 'cni', 'gc', '--grace', '0'))
    assert [c['container'] for c in out] == [dead.id]
    remaining, = cni_ports(lab_nb)
    assert remaining.device_id == f'{live.id}/eth0'
    assert len([p for p in ovs_ports(ch1) if p.startswith('dfc')]) == 1
    procs[live].kill()
    procs[live].wait()
    assert cni(ch1, 'DEL', live, config) == (0, None)


def test_an_address_reused_by_a_new_container_is_reached_at_once(
        lab, lab_nb, topo, containers):
    """A VM talked to a container; the container goes, and a new one
    (another MAC) gets its address: the VM reaches the new one at once,
    not after its ARP cache times out (the plugin announces the address;
    Linux takes an announcement for an entry confirmed more than its
    locktime, 1 s, ago)."""
    net = topo.network('10.106.0.0/24')
    vm = topo.vm(net, 'ch2')
    ch1 = lab.chassis['ch1']
    config = config_for(ch1, net.id)
    first, second = containers(), containers()
    rc, before = cni(ch1, 'ADD', first, config, args='IP=10.106.0.50')
    assert rc == 0, before
    assert pings(vm, '10.106.0.50')
    assert cni(ch1, 'DEL', first, config) == (0, None)
    time.sleep(1.2)
    rc, result = cni(ch1, 'ADD', second, config, args='IP=10.106.0.50')
    assert rc == 0, result
    assert result['interfaces'][0]['mac'] != before['interfaces'][0]['mac']
    assert vm.ping('10.106.0.50', count=1, timeout=2)
    assert cni(ch1, 'DEL', second, config) == (0, None)
