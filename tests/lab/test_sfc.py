"""Service function chaining with real packets: traffic matching a chain's
classifier passes through two service functions (namespaces that forward
and count) in order, across chassis; other traffic goes direct; deleting
the chain restores direct delivery."""
import subprocess
import time

import pytest

from waiting import wait_until


def service_function(topo, net, chassis):
    vm = topo.vm(net, chassis, port_security_enabled=False)
    vm.enable_forwarding()
    return vm


def syn_source_mac(vm, port, action):
    """The source MAC of the first SYN to port that vm receives."""
    capture = subprocess.Popen(
        ['ip', 'netns', 'exec', vm.ns, 'tcpdump', '-l', '-nn', '-e', '-c',
         '1', '-i', 'eth0', f'tcp dst port {port} and tcp[13] & 2 != 0'],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(1)
    try:
        action()
        out = capture.communicate(timeout=10)[0]
    except subprocess.TimeoutExpired:
        capture.kill()
        out = capture.communicate()[0]
    return out.split()[1] if out.split() else None


@pytest.fixture
def chain_lab(topo, lab_nb):
    net = topo.network('10.120.0.0/24')
    client = topo.vm(net, 'ch1')
    server = topo.vm(net, 'ch3')
    sf1 = service_function(topo, net, 'ch2')
    sf2 = service_function(topo, net, 'ch3')
    topo.serve(server, 8080)
    created = []

    def make(table, data):
        created.append((table, lab_nb.create(table, data)))
        return created[-1][1]
    groups = [make('port_pair_group', {'port_pairs': [make('port_pair', {
        'ingress_port': sf.port_id, 'egress_port': sf.port_id}).id]})
        for sf in (sf1, sf2)]
    classifier = make('flow_classifier', {
        'logical_source_port': client.port_id, 'protocol': 'tcp',
        'destination_port_range_min': 8080,
        'destination_port_range_max': 8080})
    yield client, server, sf1, sf2, lambda: make('port_chain', {
        'port_pair_groups': [g.id for g in groups],
        'flow_classifiers': [classifier.id]})
    for table, obj in reversed(created):
        try:
            lab_nb.delete(table, obj.id)
        except Exception:
            pass


def test_chain_steers_through_both_functions_in_order(chain_lab, lab_nb):
    client, server, sf1, sf2, make_chain = chain_lab
    wait_until(lambda: client.connect_tcp(server.ip, 8080) == client.ip,
               20, message='direct before the chain')
    before = sf1.forwarded(), sf2.forwarded()
    chain = make_chain()
    wait_until(lambda: client.connect_tcp(server.ip, 8080) == client.ip and
               sf1.forwarded() > before[0] and sf2.forwarded() > before[1],
               20, interval=0.5, message='through sf1 and sf2')
    # In order: sf2 gets it from sf1, the server from sf2.
    probe = (lambda: client.connect_tcp(server.ip, 8080))
    assert syn_source_mac(sf2, 8080, probe) == sf1.mac
    assert syn_source_mac(server, 8080, probe) == sf2.mac
    # Other traffic goes direct.
    counts = sf1.forwarded(), sf2.forwarded()
    assert client.ping(server.ip, count=3, timeout=1)
    assert (sf1.forwarded(), sf2.forwarded()) == counts
    # Deleting the chain restores direct delivery.
    lab_nb.delete('port_chain', chain.id)
    wait_until(lambda: syn_source_mac(server, 8080, probe) == client.mac,
               15, interval=0.5, message='direct again')


def test_load_is_spread_over_the_pairs_of_a_group(topo, lab_nb):
    net = topo.network('10.121.0.0/24')
    clients = [topo.vm(net, 'ch1'), topo.vm(net, 'ch2')]
    assert {int(c.ip.split('.')[-1]) % 2 for c in clients} == {0, 1}
    server = topo.vm(net, 'ch3')
    functions = [service_function(topo, net, ch) for ch in ('ch2', 'ch3')]
    topo.serve(server, 8080)
    pairs = [lab_nb.create('port_pair', {'ingress_port': sf.port_id,
                                         'egress_port': sf.port_id})
             for sf in functions]
    group = lab_nb.create('port_pair_group',
                          {'port_pairs': [p.id for p in pairs]})
    classifiers = [lab_nb.create('flow_classifier', {
        'logical_source_port': c.port_id, 'protocol': 'tcp',
        'destination_port_range_min': 8080,
        'destination_port_range_max': 8080}) for c in clients]
    chain = lab_nb.create('port_chain', {
        'port_pair_groups': [group.id],
        'flow_classifiers': [c.id for c in classifiers]})

    def both_used():
        # A connection made before the chain's flows are in goes direct
        # (and still answers with the client's address): retry until the
        # two sources have been spread over both functions.
        return all(client.connect_tcp(server.ip, 8080) == client.ip
                   for client in clients) and \
            all(sf.forwarded() > 0 for sf in functions)
    try:
        wait_until(both_used, 20, message='both functions of the group used')
    finally:
        lab_nb.delete('port_chain', chain.id)
        lab_nb.delete('port_pair_group', group.id)
        for obj in classifiers:
            lab_nb.delete('flow_classifier', obj.id)
        for obj in pairs:
            lab_nb.delete('port_pair', obj.id)
