"""testinfra checks of a deployed Dragonflow site, run on every node of an
inventory (playbooks/verify.yml, or pytest --hosts=ansible://all
--ansible-inventory=...). Expectations come from the NB database through
dfctl on the node, not from recorded dumps."""
import json

import pytest

PACKAGES = ('python3-dragonflow', 'dragonflow-common')
FLAVOURS = {'full': ('dragonflow-controller', 'df-local-controller'),
            'l3': ('dragonflow-l3-agent', 'df-l3-agent')}
# Flow cookies (low byte) of the full set's L2 apps: classifier,
# port_security, arp_responder, l2, tunneling, dhcp, security_groups,
# nd_responder, router_advertisement, sfc, dhcpv6.
L2_APP_COOKIES = {1, 2, 3, 4, 5, 6, 8, 13, 14, 15, 16}


def groups(host):
    return host.ansible.get_variables().get('group_names', [])


def dfctl(host, *args):
    out = host.check_output('dfctl --json ' + ' '.join(args))
    return json.loads(out)


def test_cni_plugin_where_engines_look(host):
    """dragonflow_cni: the plugin where podman looks, answering VERSION,
    and the network configuration the role wrote."""
    variables = host.ansible.get_variables()
    if 'compute' not in groups(host) or not variables.get('dragonflow_cni'):
        pytest.skip('no container networking here')
    assert host.package('dragonflow-cni').is_installed
    assert host.service('dragonflow-cni-gc.timer').is_enabled
    plugin = '/usr/lib/cni/dragonflow' if host.system_info.distribution in (
        'debian', 'ubuntu') else '/usr/libexec/cni/dragonflow'
    out = host.check_output(f'CNI_COMMAND=VERSION {plugin}')
    assert '1.0.0' in json.loads(out)['supportedVersions']
    name = variables.get('dragonflow_cni_name', 'dragonflow')
    conflist = json.loads(host.file(
        f'/etc/cni/net.d/{name}.conflist').content_string)
    assert conflist['plugins'][0]['network'] == \
        variables['dragonflow_cni_network']


def test_zookeeper_serves(host):
    if 'zookeeper' not in groups(host):
        pytest.skip('not a ZooKeeper node')
    service = host.service('zookeeper')
    assert service.is_running and service.is_enabled
    variables = host.ansible.get_variables()
    port = variables.get('zookeeper_client_port', 2181)
    address = variables.get('zookeeper_client_address', '0.0.0.0')
    address = '127.0.0.1' if address == '0.0.0.0' else address
    out = host.check_output(
        f"python3 -c \"import socket; s=socket.create_connection(('{address}',"
        f" {port})); s.sendall(b'srvr'); print(s.recv(4096).decode())\"")
    assert 'Mode: standalone' in out or 'Mode: leader' in out or \
        'Mode: follower' in out


def compute(host):
    if 'compute' not in groups(host):
        pytest.skip('not a compute node')


def flavour(host):
    return host.ansible.get_variables().get('dragonflow_flavour', 'full')


def test_packages_at_the_expected_version(host):
    compute(host)
    expected = host.ansible.get_variables().get('dragonflow_expected_version')
    package, _ = FLAVOURS[flavour(host)]
    other = [p for p, _ in FLAVOURS.values() if p != package]
    for name in other:
        assert not host.package(name).is_installed, name
    for name in PACKAGES + (package,):
        package = host.package(name)
        assert package.is_installed, name
        if expected:
            assert package.version == expected, name


def test_controller_running_and_enabled(host):
    compute(host)
    service = host.service(FLAVOURS[flavour(host)][1])
    assert service.is_running and service.is_enabled


def test_bridge_secure_and_connected(host):
    compute(host)
    assert host.check_output('ovs-vsctl get Bridge br-int fail_mode') == \
        'secure'
    assert 'true' in host.check_output(
        'ovs-vsctl --columns=is_connected list Controller')
    ports = host.check_output('ovs-vsctl list-ports br-int').split()
    assert 'tun-geneve' in ports and 'tun-vxlan' in ports


def test_chassis_registered_and_up(host):
    compute(host)
    name = host.ansible.get_variables()['inventory_hostname']
    chassis = {c['id']: c for c in dfctl(host, 'chassis', 'list')}
    assert chassis[name]['state'] == 'up'
    assert chassis[name]['ip'] == \
        host.ansible.get_variables()['dragonflow_local_ip']


def test_flows_match_the_nb_state(host):
    """Every port NB binds here has its classifier and port-security flows;
    the table defaults of every app are there."""
    compute(host)
    name = host.ansible.get_variables()['inventory_hostname']
    flows = host.check_output('ovs-ofctl -O OpenFlow13 dump-flows br-int')
    if flavour(host) == 'l3':
        # L2 is NORMAL's: the table-0 default, and no flow of an L2 app.
        assert 'priority=0 actions=NORMAL' in flows
        cookies = {int(line.split('cookie=')[1].split(',')[0], 16) & 0xff
                   for line in flows.splitlines() if 'cookie=' in line}
        assert not cookies & L2_APP_COOKIES, sorted(cookies)
        return
    for table in (0, 5, 25, 30, 55, 75, 100):
        assert f'table={table}, ' in flows and 'priority=0' in flows
    for port in dfctl(host, 'port', 'list'):
        if port.get('binding_chassis') != name:
            continue
        key = hex(port['unique_key'])
        assert f'set_field:{key}->reg6' in flows, port['id']
        assert f'reg6={key}' in flows, port['id']


def test_tunnels_to_the_chassis_of_remote_ports(host):
    """For every network with a port bound here, every other chassis
    with a port on it is reached by a tunnel flow."""
    compute(host)
    if flavour(host) == 'l3':
        pytest.skip('the L3 flavour does not tunnel')
    name = host.ansible.get_variables()['inventory_hostname']
    flows = host.check_output('ovs-ofctl -O OpenFlow13 dump-flows br-int')
    chassis = {c['id']: c for c in dfctl(host, 'chassis', 'list')}
    networks = {n['id']: n for n in dfctl(host, 'network', 'list')}
    ports = dfctl(host, 'port', 'list')
    local = {p['network_id'] for p in ports
             if p.get('binding_chassis') == name}
    for port in ports:
        other = port.get('binding_chassis')
        network = networks.get(port['network_id'])
        if port['network_id'] not in local or other in (None, name) or \
                other not in chassis or network is None or \
                network['network_type'] not in ('geneve', 'vxlan'):
            continue
        assert f'set_field:{chassis[other]["ip"]}->tun_dst' in flows, \
            (port['id'], other)


def test_bgp_sessions_established_with_routes(host):
    """On a BGP speaker host: df-bgp runs and every peer's session is
    Established, with routes advertised."""
    if 'bgp' not in groups(host):
        pytest.skip('not a BGP speaker host')
    service = host.service('df-bgp')
    assert service.is_running and service.is_enabled
    statuses = dfctl(host, 'bgp', 'status')
    assert statuses
    for status in statuses:
        assert status['peers']
        assert all(p['state'] == 'Established' for p in status['peers'])
        assert status['routes']


# --- monitoring -------------------------------------------------------------
FETCH = ("python3 -c \"import json, sys, urllib.request; print(json.dumps("
         "json.load(urllib.request.urlopen(sys.argv[1], timeout=5))))\" '{}'")


def http_json(host, url):
    return json.loads(host.check_output(FETCH.format(url)))


def query(host, base, expr):
    """The value of a PromQL expression with one result (0 if none)."""
    import urllib.parse
    out = http_json(host, f'{base}/api/v1/query?query='
                    f'{urllib.parse.quote(expr)}')
    result = out['data']['result']
    return float(result[0]['value'][1]) if result else 0.0


def until(predicate, timeout=60, interval=1):
    import time
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'not met in time'
        time.sleep(interval)


def test_prometheus_scrapes_every_dragonflow_daemon(host):
    """On the monitoring host: Prometheus runs, has one target per
    df-local-controller and df-bgp of the inventory, all up."""
    if 'monitoring' not in groups(host):
        pytest.skip('not a monitoring host')
    service = host.service('prometheus')
    assert service.is_running and service.is_enabled
    variables = host.ansible.get_variables()
    want = {'df-local-controller': len(variables['groups'].get('compute', [])),
            'df-bgp': len(variables['groups'].get('bgp', []))}

    def all_up():
        targets = http_json(host, 'http://127.0.0.1:9090/api/v1/targets')
        active = targets['data']['activeTargets']
        jobs = {}
        for target in active:
            jobs[target['labels']['job']] = jobs.get(
                target['labels']['job'], 0) + 1
        return jobs == want and all(t['health'] == 'up' for t in active)
    until(all_up, timeout=60)


def test_an_nb_change_moves_the_lag_histogram_in_prometheus(host):
    """On a compute host: one NB change this host's agent follows (a port
    bound here, renamed and back) shows up in the NB lag histogram that
    Prometheus scraped from the agent."""
    compute(host)
    variables = host.ansible.get_variables()
    base = variables.get('lab_prometheus_url')
    if not base:
        pytest.skip('no Prometheus in this inventory (lab_prometheus_url)')
    chassis = host.check_output('ovs-vsctl get Open_vSwitch . '
                                'external_ids:system-id').strip('"')
    ports = dfctl(host, 'port', 'list', '--where',
                  f'binding_chassis={chassis}')
    if not ports:
        pytest.skip('no port bound on this chassis')
    port = ports[0]
    # (inventory variables come unrendered: the node address, not
    # dragonflow_metrics_address's template)
    address = variables['dragonflow_local_ip']
    expr = (f'sum(dragonflow_nb_lag_seconds_count{{job="df-local-controller",'
            f'instance="{address}:9110"}})')
    before = query(host, base, expr)
    name = port.get('name') or 'probe'
    dfctl(host, 'port', 'update', port['id'], '--name', f'{name}-lag-probe')
    try:
        until(lambda: query(host, base, expr) > before, timeout=60)
    finally:
        dfctl(host, 'port', 'update', port['id'], '--name', name)
