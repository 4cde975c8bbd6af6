"""df-bgp against a real BIRD 2: the session comes up, tenant prefixes are
advertised with the router gateway as next hop and floating IP /32s with
the chassis' external address; a deleted floating IP is withdrawn."""
import json
import shutil
import time

import pytest

from lab_harness.bgplab import BgpLab
from lab_harness.netlab import EXTERNAL_GATEWAY
from lab_harness.scrape import scrape, total
from waiting import wait_until

if not shutil.which('bird'):
    pytest.skip('needs BIRD 2 (bird2)', allow_module_level=True)

@pytest.fixture(scope='module')
def bgp_lab(lab):
    """df-bgp in its own namespace peering with BIRD on an upstream router
    (untagged on the provider segment)."""
    upstream = lab.add_external('bgpup')
    upstream.add_address(f'{EXTERNAL_GATEWAY}/24')
    bgp = BgpLab(lab, upstream).start()
    yield bgp
    bgp.stop()
    upstream.destroy()
    lab.vms.pop('bgpup', None)


def _advertised(nb, name, cidr):
    """An external flat network and a tenant network behind a router with
    its gateway there: (external, tenant, router)."""
    ext = nb.create('logical_switch', {'name': f'public-{name}',
                                       'external': True,
                                       'network_type': 'flat',
                                       'physical_network': 'public'})
    nb.create('subnet', {'network_id': ext.id, 'cidr': '172.24.4.0/24'})
    tenant = nb.create('logical_switch', {'name': f'tenant-{name}'})
    subnet = nb.create('subnet', {'network_id': tenant.id, 'cidr': cidr})
    router = nb.create('logical_router', {
        'name': f'r-{name}', 'external_gateway': {'network_id': ext.id}})
    nb.create('logical_router_port', {'router_id': router.id,
                                      'subnet_id': subnet.id})
    return ext, tenant, router


def _remove(nb, speaker, peer, router, tenant, ext):
    nb.delete('bgp_speaker', speaker.id)
    nb.delete('bgp_peer', peer.id)
    nb.delete('logical_router', router.id, cascade=True)
    nb.delete('logical_switch', tenant.id, cascade=True)
    nb.delete('logical_switch', ext.id, cascade=True)


def test_routes_reach_bird_and_withdraw(bgp_lab, lab_nb, dfctl_lab,
                                        dfctl_verdict):
    nb = lab_nb
    ext, tenant, router = _advertised(nb, 'bgp', '10.60.0.0/24')
    gateway = router.external_gateway['ip']
    peer, speaker = bgp_lab.peer_objects(nb, [ext.id])
    try:
        try:
            wait_until(bgp_lab.established, timeout=30,
                       message='BGP session established')
        except AssertionError:
            with open(bgp_lab.log) as f:
                raise AssertionError('no BGP session; df-bgp log:\n' +
                                     f.read()[-3000:]) from None
        wait_until(lambda: '10.60.0.0/24' in bgp_lab.birdc('show', 'route')
                   and f'via {gateway}' in bgp_lab.birdc('show', 'route'),
                   timeout=15, message='tenant prefix on BIRD')
        nb.patch('chassis', 'ch1', {'external_host_ip': '172.24.4.101'})
        port = nb.create('logical_port', {'network_id': tenant.id,
                                          'binding_chassis': 'ch1'})
        fip = nb.create('floating_ip', {'floating_network_id': ext.id,
                                        'port_id': port.id})
        host_route = f'{fip.floating_ip_address}/32'
        wait_until(lambda: host_route in bgp_lab.birdc('show', 'route'),
                   timeout=15, message='floating IP /32 on BIRD')
        assert 'via 172.24.4.101' in bgp_lab.birdc('show', 'route', 'for',
                                           fip.floating_ip_address)
        samples = scrape(bgp_lab.ns, 9111)
        assert total(samples, 'dragonflow_bgp_sessions',
                     peer=bgp_lab.bird_ip, state='Established') == 1
        wait_until(lambda: total(scrape(bgp_lab.ns, 9111),
                                 'dragonflow_bgp_prefixes_advertised') >= 2,
                   timeout=10, message='prefixes advertised in /metrics')
        status = json.loads(dfctl_lab('--json', 'bgp', 'status'))
        assert status[0]['peers'][0]['state'] == 'Established'
        assert {'prefix': '10.60.0.0/24', 'next_hop': gateway} in \
            status[0]['routes']
        start = time.monotonic()
        nb.delete('floating_ip', fip.id)
        wait_until(lambda: host_route not in bgp_lab.birdc('show', 'route'),
                   timeout=5, interval=0.05,
                   message='floating IP withdrawn within 5 s')
        print(f'withdrawn after {time.monotonic() - start:.2f} s')
        # dfctl check names a peer that is not Established.
        peer_finding = f'{speaker.id}/{bgp_lab.bird_ip}'

        def bgp_findings():
            return [f['text'] for f in dfctl_verdict('check')[1]['findings']
                    if f['subject'] == peer_finding]
        assert bgp_findings() == []
        bgp_lab.birdc('disable', 'dragonflow')
        wait_until(lambda: bgp_findings(), timeout=30,
                   message='dfctl check reports the peer down')
        text = bgp_findings()[0]
        assert text.startswith(f'BGP speaker {speaker.id}: peer '
                               f'{bgp_lab.bird_ip} (AS {bgp_lab.bird_as}) '
                               'is ') and text.endswith('not Established')
        bgp_lab.birdc('enable', 'dragonflow')
        wait_until(bgp_lab.established, timeout=60,
                   message='BGP session back')
    finally:
        _remove(nb, speaker, peer, router, tenant, ext)


def test_a_df_bgp_restart_keeps_birds_routes(bgp_lab, lab_nb):
    """Graceful restart: BIRD (a helper by default) keeps df-bgp's routes
    while df-bgp restarts, then takes them again; sampled every 50 ms the
    tenant prefix is never missing from BIRD's table."""
    nb = lab_nb
    ext, tenant, router = _advertised(nb, 'gr', '10.61.0.0/24')
    peer, speaker = bgp_lab.peer_objects(nb, [ext.id])
    try:
        wait_until(bgp_lab.established, timeout=30,
                   message='BGP session established')
        wait_until(lambda: '10.61.0.0/24' in bgp_lab.birdc('show', 'route'),
                   timeout=15, message='tenant prefix on BIRD')
        assert 'Graceful restart' in bgp_lab.birdc(
            'show', 'protocols', 'all', 'dragonflow')
        bgp_lab.restart_speaker()
        missing, samples, restarted = 0, 0, False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            routes = bgp_lab.birdc('show', 'route')
            samples += 1
            missing += '10.61.0.0/24' not in routes
            if not restarted and not bgp_lab.established():
                restarted = True        # the old session is gone
            if restarted and bgp_lab.established() and \
                    '10.61.0.0/24' in routes:
                break
            time.sleep(0.05)
        assert restarted, 'the session never went down'
        assert bgp_lab.established(), 'the session did not come back'
        assert missing == 0, f'prefix missing in {missing} of {samples} ' \
            'samples during the restart'
        with open(bgp_lab.log) as f:
            assert 'End-of-RIB sent' in f.read()
    finally:
        _remove(nb, speaker, peer, router, tenant, ext)
