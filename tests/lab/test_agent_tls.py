"""The agent over TLS to ZooKeeper, with digest auth on top: ch3's agent
is restarted against a ZooKeeper that serves the NB on a secureClientPort
(client certificates required, a throwaway CA); it registers, binds ports
(NB writes as the digest user) and programs their flows: two VMs ping."""
import os

import pytest

from dragonflow.nb.api import NbApi
from dragonflow.store import zk
from lab_harness import tls
from lab_harness.zookeeper import ZkServer
from waiting import wait_until

AUTH = 'dragonflow:lab-tls'
PLAIN, SECURE = 2281, 2282


@pytest.fixture
def secure_nb(lab):
    certs = tls.make_ca(os.path.join(lab.dir, 'tls'), addresses=(lab.zk_ip,))
    server = ZkServer(os.path.join(lab.dir, 'zk-tls'), host=lab.zk_ip,
                      port=PLAIN, netns=lab.zk_ns,
                      extra_config=tls.zookeeper_config(certs, SECURE))
    server.start().wait_ready()
    client = zk.make_client(f'{lab.zk_ip}:{SECURE}', auth=AUTH, use_ssl=True,
                            ca=certs['ca'], certfile=certs['client_crt'],
                            keyfile=certs['client_key'])
    try:
        client.start(timeout=20)
        nb = NbApi(client)
        nb.certs = certs
        yield nb
    finally:
        client.stop()
        client.close()
        server.kill()


def test_an_agent_over_tls_with_digest_auth_binds_and_forwards(lab,
                                                               secure_nb):
    nb, certs = secure_nb, secure_nb.certs
    ch3 = lab.chassis['ch3']
    ch3.stop_controller()
    vms = []
    try:
        ch3.start_controller({
            'remote_db_hosts': f'{lab.zk_ip}:{SECURE}', 'zk_use_ssl': 'true',
            'zk_ca': certs['ca'], 'zk_certfile': certs['client_crt'],
            'zk_keyfile': certs['client_key'], 'zk_auth': AUTH})
        ch3.wait_connected()
        net = nb.create('logical_switch', {'name': 'over-tls'})
        nb.create('subnet', {'network_id': net.id, 'cidr': '10.77.0.0/24'})
        for name in ('tls1', 'tls2'):
            port = nb.create('logical_port', {'network_id': net.id,
                                              'name': name})
            vm = lab.add_vm(name, ch3, port)
            vm.ip = port.ips[0]
            vms.append(vm)
        wait_until(lambda: all(p.binding_chassis == 'ch3'
                               for p in nb.list('logical_port')), 20,
                   message='ports bound by the agent over TLS')
        wait_until(lambda: vms[0].ping(vms[1].ip), 20,
                   message='ping between the two VMs')
        services = {s.id for s in nb.list('service')}
        assert 'ch3.df-local-controller' in services
        with open(os.path.join(ch3.dir, 'controller.log')) as f:
            log = f.read()
        assert 'not authori' not in log.lower()
    finally:
        for vm in vms:
            vm.unplug()
            vm.destroy()
            lab.vms.pop(vm.name, None)
        ch3.stop_controller()
        ch3.start_controller()
        ch3.wait_connected()
