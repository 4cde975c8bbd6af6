"""Containers with a real engine: podman 4.3 with the CNI backend runs
busybox-static containers on two lab chassis through the dragonflow
plugin (``lab_harness/podman.py``: podman in the chassis' network
namespace). They reach each other and a VM, leave by SNAT through their
own chassis, are filtered by security groups; ``podman rm -f`` removes
the NB port; a container whose engine died without DEL is collected by
``dfctl cni gc``."""
import json
import os
import shutil
import signal

import pytest

from lab_harness.netlab import AGENT_DIR, EXTERNAL_GATEWAY
from lab_harness.podman import Podman
from test_nat import upstream  # noqa: F401 (the external network fixture)
from waiting import wait_until

if not (shutil.which('podman') and shutil.which('runc')):
    pytest.skip('podman and runc are needed', allow_module_level=True)


@pytest.fixture(scope='module')
def podman(lab):
    engine = Podman(os.path.join(lab.dir, 'podman'), AGENT_DIR)
    engine.image()
    yield engine
    engine.close()


@pytest.fixture
def pods(podman):
    started = []

    def run(chassis, name, network, *command):
        podman.run(chassis, name, network, *command)
        started.append((chassis, name))
        return name
    yield run
    for chassis, name in started:
        podman.rm(chassis, name)


def cni_ports(nb):
    return {p.name: p for p in nb.list('logical_port')
            if p.device_owner == 'cni'}


def reaches(podman, chassis, name, ip):
    return podman.exec(chassis, name, 'ping', '-c', '1', '-W', '2',
                       ip).returncode == 0


def test_containers_on_two_chassis_reach_each_other_and_a_vm(
        lab, lab_nb, topo, podman, pods):
    net = topo.network('10.111.0.0/24')
    vm = topo.vm(net, 'ch2')
    ch1, ch2 = lab.chassis['ch1'], lab.chassis['ch2']
    for chassis in (ch1, ch2):
        podman.network(chassis, 'dfa', network=net.name)
    pods(ch1, 'web1', 'dfa')
    pods(ch2, 'web2', 'dfa')
    a1, a2 = (podman.address(ch, n, 'dfa') for ch, n in
              ((ch1, 'web1'), (ch2, 'web2')))
    ports = cni_ports(lab_nb)
    assert {p.binding_chassis for p in ports.values()} == {'ch1', 'ch2'}
    assert {p.ips[0] for p in ports.values()} == {a1, a2}
    assert reaches(podman, ch1, 'web1', a2)
    assert reaches(podman, ch2, 'web2', vm.ip)
    assert vm.ping(a1, count=1, timeout=2)
    podman.rm(ch1, 'web1')
    wait_until(lambda: [p.ips[0] for p in cni_ports(lab_nb).values()] ==
               [a2], 10, message='podman rm -f removed the NB port')


def test_a_container_leaves_by_snat_through_its_chassis(
        lab, lab_nb, topo, podman, pods, upstream):  # noqa: F811
    net = topo.network('10.112.0.0/24')
    topo.router('r-pods', [net], external_gateway={
        'network_id': upstream.network.id})
    ch1 = lab.chassis['ch1']
    podman.network(ch1, 'dfb', network=net.id)
    pods(ch1, 'out1', 'dfb')
    seen = []

    def answered():
        proc = podman.exec(ch1, 'out1', 'sh', '-c',
                           f'sleep 1 | nc -w 2 {EXTERNAL_GATEWAY} 8080')
        seen.append(proc.stdout.strip())
        return bool(seen[-1])
    wait_until(answered, 20, interval=0.5,
               message='the container reaches the upstream router')
    assert seen[-1] == ch1.external_ip


def test_a_security_group_blocks_a_port_until_a_rule_allows_it(
        lab, lab_nb, topo, podman, pods):
    net = topo.network('10.113.0.0/24')
    group = topo.security_group('pods-ping', {
        'direction': 'ingress', 'ethertype': 'IPv4', 'protocol': 'icmp'},
        {'direction': 'egress', 'ethertype': 'IPv4'})
    ch1, ch2 = lab.chassis['ch1'], lab.chassis['ch2']
    podman.network(ch1, 'dfc', network=net.id)
    podman.network(ch2, 'dfc-guarded', network=net.id,
                   security_groups=['pods-ping'])
    pods(ch1, 'client', 'dfc')
    pods(ch2, 'server', 'dfc-guarded', 'sh', '-c',
         'while true; do nc -l -p 8080 -e /bin/echo hi; done')
    server = podman.address(ch2, 'server', 'dfc-guarded')

    def connects():
        return podman.exec(ch1, 'client', 'sh', '-c',
                           f'sleep 1 | nc -w 2 {server} 8080'
                           ).stdout.strip() == 'hi'
    assert reaches(podman, ch1, 'client', server)      # icmp allowed
    assert not connects()
    lab_nb.create('security_group_rule', {
        'security_group_id': group.id, 'direction': 'ingress',
        'ethertype': 'IPv4', 'protocol': 'tcp', 'port_range_min': 8080,
        'port_range_max': 8080})
    wait_until(connects, 15, interval=0.5, message='tcp 8080 allowed')


def test_gc_collects_a_container_whose_engine_died(
        lab, lab_nb, topo, podman, pods):
    net = topo.network('10.114.0.0/24')
    ch1 = lab.chassis['ch1']
    podman.network(ch1, 'dfd', network=net.id)
    pods(ch1, 'doomed', 'dfd')
    assert len(cni_ports(lab_nb)) == 1
    state = json.loads(podman.podman(ch1, 'inspect', 'doomed').stdout)[0][
        'State']
    # The engine dies with the container: no CNI DEL ever runs.
    for pid in (state['ConmonPid'], state['Pid']):
        os.kill(pid, signal.SIGKILL)
    out = ch1.dfctl('--json', 'cni', 'gc', '--grace', '0')
    assert state['Pid'] and [c['container'] for c in json.loads(out)] == [
        json.loads(podman.podman(ch1, 'inspect', 'doomed').stdout)[0]['Id']]
    assert cni_ports(lab_nb) == {}
