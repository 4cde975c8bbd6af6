"""The NB API against a real ZooKeeper: CRUD, compare-and-set, uniqueness,
references, and 'nothing written' on every refusal."""
import threading

import pytest

from dragonflow import errors
from dragonflow.nb import api


def log_size(nb):
    return len(nb.client.get_children(nb.store.layout.log))


def snapshot(nb):
    """Every znode under the root with its data: proves nothing was written."""
    out = {}

    def walk(path):
        data, stat = nb.client.get(path)
        out[path] = (data, stat.version, stat.cversion)
        for child in nb.client.get_children(path):
            walk(f'{path}/{child}')
    walk(nb.store.layout.root)
    return out


def assert_refused(nb, table, data, message):
    """Creating data in table fails with message and writes nothing."""
    before = snapshot(nb)
    with pytest.raises(errors.NbError, match=message):
        nb.create(table, data)
    assert snapshot(nb) == before


@pytest.fixture
def net(nb):
    network = nb.create('logical_switch', {'name': 'net1',
                                           'network_type': 'vxlan',
                                           'segmentation_id': 1001})
    subnet = nb.create('subnet', {'network_id': network.id,
                                  'cidr': '10.0.0.0/24'})
    return network, subnet


def test_create_get_list_update_delete(nb, net):
    network, subnet = net
    port = nb.create('logical_port', {'network_id': network.id, 'name': 'vm1'})
    assert port.version == 0 and port.ips == ['10.0.0.2']
    assert port.subnets == [subnet.id]
    assert nb.get('logical_port', port.id) == port
    assert [p.id for p in nb.list('logical_port', name='vm1')] == [port.id]

    port.name = 'vm1-renamed'
    updated = nb.update(port)
    assert updated.version == 1
    assert nb.get('logical_port', port.id).name == 'vm1-renamed'

    nb.delete('logical_port', port.id)
    with pytest.raises(errors.NotFound):
        nb.get('logical_port', port.id)


def test_stale_version_is_refused_and_nothing_written(nb, net):
    network, _ = net
    port = nb.create('logical_port', {'network_id': network.id})
    nb.patch('logical_port', port.id, {'name': 'first'})
    before = snapshot(nb)
    port.name = 'second'                     # still at version 0
    with pytest.raises(errors.StaleVersion, match='version 0 is stale'):
        nb.update(port)
    assert snapshot(nb) == before


def test_concurrent_compare_and_set_has_exactly_one_winner(nb, net):
    network, _ = net
    port = nb.create('logical_port', {'network_id': network.id})
    results = []

    def writer(name):
        try:
            nb.patch('logical_port', port.id, {'name': name}, version=0)
            results.append('ok')
        except errors.StaleVersion:
            results.append('stale')
    threads = [threading.Thread(target=writer, args=(f'w{i}',))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ['ok'] + ['stale'] * 7
    assert nb.get('logical_port', port.id).version == 1


@pytest.mark.parametrize('table, data, message', [
    ('logical_port', {'ips': ['10.9.9.9']}, r'ips\[0\]: 10.9.9.9 is not in any '
                                            r'subnet'),
    ('logical_port', {'ips': ['10.0.0.1']}, 'is the gateway of subnet'),
    ('logical_port', {'macs': ['zz:zz']}, r'macs\[0\]: is not a valid MAC'),
    ('logical_port', {'network_id': 'missing'},
     'logical_port.network_id: logical_switch missing does not exist'),
    ('logical_port', {'security_groups': ['nosuchsg']},
     r'logical_port.security_groups: security_group nosuchsg does not exist'),
    ('logical_port', {'colour': 'red'}, "unknown field 'colour'"),
    ('subnet', {'cidr': '10.0.0.128/25'}, 'overlaps subnet'),
    ('subnet', {'cidr': '10.1.0.0/33'}, 'is not a valid CIDR'),
    ('logical_switch', {'network_type': 'vxlan', 'segmentation_id': 1001},
     'segmentation id vxlan:1001 is already used'),
    ('logical_switch', {'mtu': '1500'}, 'mtu: must be an integer'),
    # In a new topic: the topic's feed is not left behind either.
    ('logical_switch', {'network_type': 'vxlan', 'segmentation_id': 1001,
                        'topic': 'tenant-new'},
     'segmentation id vxlan:1001 is already used'),
])
def test_bad_input_is_refused_and_nothing_written(nb, net, table, data,
                                                  message):
    network, _ = net
    if table in ('logical_port', 'subnet'):
        data = dict({'network_id': network.id}, **data)
    before = snapshot(nb)
    with pytest.raises(errors.NbError, match=message):
        nb.create(table, data)
    assert snapshot(nb) == before


def test_a_port_update_checks_addresses_only_when_they_change(nb, net):
    """A binding written (the agents' most frequent write) reads no
    subnet: the addresses it keeps were checked when they were written
    and their subnets cannot go; new addresses are checked as on create."""
    network, subnet = net
    port = nb.create('logical_port', {'network_id': network.id})
    reads = []
    get_children = nb.client.get_children

    def counted(path, *args, **kwargs):
        reads.append(path)
        return get_children(path, *args, **kwargs)
    nb.client.get_children = counted
    try:
        bound = nb.patch('logical_port', port.id, {'binding_chassis': None,
                                                   'name': 'renamed'})
        assert reads == [] and bound.subnets == [subnet.id]
        before = snapshot(nb)
        with pytest.raises(errors.NbError, match='is not in any subnet'):
            nb.patch('logical_port', port.id, {'ips': ['10.9.9.9']})
        with pytest.raises(errors.NbError, match='is the gateway of subnet'):
            nb.patch('logical_port', port.id, {'ips': ['10.0.0.1']})
        assert snapshot(nb) == before
    finally:
        nb.client.get_children = get_children


def test_duplicate_ip_and_mac_in_a_network(nb, net):
    network, _ = net
    port = nb.create('logical_port', {'network_id': network.id})
    with pytest.raises(errors.UniqueConflict, match=f'{port.ips[0]} is already '
                       f'used by logical_port:{port.id}'):
        nb.create('logical_port', {'network_id': network.id, 'ips': port.ips})
    with pytest.raises(errors.UniqueConflict, match='MAC address'):
        nb.create('logical_port', {'network_id': network.id,
                                   'macs': port.macs})
    # Freed on delete, and reusable.
    nb.delete('logical_port', port.id)
    nb.create('logical_port', {'network_id': network.id, 'ips': port.ips})


def test_changing_a_port_ip_moves_its_unique_key(nb, net):
    network, _ = net
    port = nb.create('logical_port', {'network_id': network.id,
                                      'ips': ['10.0.0.10']})
    nb.patch('logical_port', port.id, {'ips': ['10.0.0.11']})
    nb.create('logical_port', {'network_id': network.id, 'ips': ['10.0.0.10']})
    with pytest.raises(errors.UniqueConflict):
        nb.create('logical_port', {'network_id': network.id,
                                   'ips': ['10.0.0.11']})


def test_immutable_fields_cannot_change(nb, net):
    network, subnet = net
    with pytest.raises(errors.ValidationError, match='cidr: cannot be changed'):
        nb.patch('subnet', subnet.id, {'cidr': '10.5.0.0/24'})


def test_delete_refused_while_referenced_unless_cascade(nb, net):
    network, subnet = net
    port = nb.create('logical_port', {'network_id': network.id})
    before = snapshot(nb)
    with pytest.raises(errors.StillReferenced, match=f'logical_port:{port.id}'):
        nb.delete('logical_switch', network.id)
    assert snapshot(nb) == before
    nb.delete('logical_switch', network.id, cascade=True)
    for table, obj_id in [('logical_switch', network.id),
                          ('subnet', subnet.id), ('logical_port', port.id)]:
        with pytest.raises(errors.NotFound):
            nb.get(table, obj_id)


def test_a_refused_cascade_writes_nothing(nb, net):
    """One corrupted port among five: the cascade is refused as a whole
    (it used to delete four ports and their references first)."""
    network, _ = net
    ports = [nb.create('logical_port', {'network_id': network.id})
             for _ in range(5)]
    nb.client.set(nb.store.layout.obj('logical_port', ports[2].id),
                  b'not json')
    before = snapshot(nb)
    with pytest.raises(errors.CorruptObject):
        nb.delete('logical_switch', network.id, cascade=True)
    assert snapshot(nb) == before


def test_a_cascade_too_big_for_one_transaction_is_split_and_completes(nb):
    """1,200 ports: more than one ZooKeeper request holds; split referrers
    first, every object and reference gone at the end."""
    network = nb.create('logical_switch', {'name': 'big'})
    nb.create('subnet', {'network_id': network.id, 'cidr': '10.8.0.0/20'})
    ports = nb.write_many([('create', 'logical_port', {
        'network_id': network.id}) for _ in range(1200)])
    plan = nb._delete_plan(nb.get('logical_switch', network.id), True)
    assert len(list(nb._chunks([(None, None, ws) for ws in plan],
                               api.BULK_BYTES))) > 1
    nb.delete('logical_switch', network.id, cascade=True)
    assert nb.list('logical_port') == [] and nb.list('subnet') == []
    assert nb.referrer_ids('logical_switch', network.id) == []
    with pytest.raises(errors.NotFound):
        nb.get('logical_port', ports[-1].id)


def test_deleting_a_port_clears_its_floating_ip(nb):
    ext = nb.create('logical_switch', {'name': 'ext', 'external': True,
                                       'network_type': 'flat',
                                       'physical_network': 'public'})
    nb.create('subnet', {'network_id': ext.id, 'cidr': '172.24.4.0/24'})
    private = nb.create('logical_switch', {'name': 'private'})
    nb.create('subnet', {'network_id': private.id, 'cidr': '10.0.0.0/24'})
    port = nb.create('logical_port', {'network_id': private.id})
    fip = nb.create('floating_ip', {'floating_network_id': ext.id,
                                    'port_id': port.id})
    assert fip.fixed_ip_address == port.ips[0]
    assert fip.floating_ip_address == '172.24.4.2'
    nb.delete('logical_port', port.id)
    fip = nb.get('floating_ip', fip.id)
    assert fip.port_id is None and fip.fixed_ip_address is None


def test_floating_ip_needs_an_external_network_and_a_fixed_ip(nb, net):
    network, _ = net
    with pytest.raises(errors.ValidationError, match='is not external'):
        nb.create('floating_ip', {'floating_network_id': network.id,
                                  'floating_ip_address': '10.0.0.50'})


def test_router_interfaces(nb, net):
    network, subnet = net
    router = nb.create('logical_router', {'name': 'r1'})
    rport = nb.create('logical_router_port', {'router_id': router.id,
                                              'subnet_id': subnet.id})
    assert rport.ip == '10.0.0.1' and rport.network_id == network.id
    other = nb.create('logical_router', {'name': 'r2'})
    with pytest.raises(errors.UniqueConflict, match=f'subnet {subnet.id} is '
                       'already attached to a router'):
        nb.create('logical_router_port', {'router_id': other.id,
                                          'subnet_id': subnet.id,
                                          'ip': '10.0.0.200'})
    net2 = nb.create('logical_switch', {'name': 'net2'})
    overlapping = nb.create('subnet', {'network_id': net2.id,
                                       'cidr': '10.0.0.0/25'})
    with pytest.raises(errors.ValidationError, match='overlaps 10.0.0.0/24 '
                       'already on router'):
        nb.create('logical_router_port', {'router_id': router.id,
                                          'subnet_id': overlapping.id})


def test_security_group_in_use_cannot_be_deleted(nb, net):
    network, _ = net
    sg = nb.create('security_group', {'name': 'web'})
    rule = nb.create('security_group_rule', {
        'security_group_id': sg.id, 'direction': 'ingress',
        'protocol': 'tcp', 'port_range_min': 80, 'port_range_max': 80,
        'remote_group_id': sg.id})
    nb.create('logical_port', {'network_id': network.id,
                               'security_groups': [sg.id]})
    with pytest.raises(errors.StillReferenced):
        nb.delete('security_group', sg.id)
    assert nb.get('security_group_rule', rule.id).remote_group_id == sg.id


def test_concurrent_overlapping_subnets_cannot_both_win(nb):
    network = nb.create('logical_switch', {'name': 'race'})
    outcomes = []

    def make(cidr):
        try:
            nb.create('subnet', {'network_id': network.id, 'cidr': cidr})
            outcomes.append('ok')
        except errors.ValidationError:
            outcomes.append('refused')
    threads = [threading.Thread(target=make, args=(c,)) for c in
               ('10.8.0.0/16', '10.8.1.0/24', '10.8.2.0/24', '10.8.0.0/20')]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    subnets = nb.list('subnet', network_id=network.id)
    cidrs = [s.network for s in subnets]
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs)
                   for b in cidrs[i + 1:])
    assert outcomes.count('ok') == len(subnets) >= 1


def test_garbage_in_a_znode_is_skipped_by_readers(nb, net):
    network, _ = net
    nb.store.write_raw('logical_switch', 'garbage', b'\x00not json')
    nb.store.write_raw('logical_switch', 'wrongschema', b'{"mtu": "x"}')
    names = [n.name for n in nb.list('logical_switch')]
    assert names == ['net1']
    with pytest.raises(errors.CorruptObject, match='wrongschema'):
        nb.get('logical_switch', 'wrongschema')


def test_each_write_appends_one_change_log_entry(nb):
    start = log_size(nb)
    network = nb.create('logical_switch', {'name': 'n'})
    nb.patch('logical_switch', network.id, {'mtu': 1400})
    nb.delete('logical_switch', network.id)
    assert log_size(nb) == start + 3


def test_digest_auth_only_credentialed_clients_write(zk_server, nb_root):
    from dragonflow.nb.api import NbApi
    from dragonflow.store import zk
    owner = zk.make_client(zk_server.address, auth='df:secret')
    owner.start(timeout=10)
    anonymous = zk.make_client(zk_server.address)
    anonymous.start(timeout=10)
    try:
        nb = NbApi(owner, nb_root)
        network = nb.create('logical_switch', {'name': 'guarded'})
        reader = NbApi(anonymous, nb_root)
        assert reader.get('logical_switch', network.id).name == 'guarded'
        with pytest.raises(errors.NotAuthorized, match='not authorised'):
            reader.create('logical_switch', {'name': 'intruder'})
        assert [n.name for n in nb.list('logical_switch')] == ['guarded']
    finally:
        owner.delete(nb_root, recursive=True)
        for c in (owner, anonymous):
            c.stop()
            c.close()


def test_writes_without_a_version_retry_concurrent_changes(nb, net):
    """Without a version, patch and delete read again after losing a race
    (an agent writing a binding while the operator deletes, say). The
    races are made, not hoped for: another write lands between the read
    and the write of the first attempts (a writer looping every few ms
    starved the patch on a loaded machine, since it never backs off)."""
    network, _ = net
    port = nb.create('logical_port', {'network_id': network.id})
    real_get, races = nb.get, {'left': 3, 'made': 0, 'busy': False}

    def racing_get(table, obj_id):
        obj = real_get(table, obj_id)
        if table in ('logical_port', 'logical_switch') and \
                races['left'] and not races['busy']:
            races['left'] -= 1
            races['busy'] = True
            try:
                # Someone else's write, between our read and our write.
                nb.patch('logical_port', port.id,
                         {'name': f'other{races["made"]}'})
                races['made'] += 1
            finally:
                races['busy'] = False
        return obj
    nb.get = racing_get
    try:
        patched = nb.patch('logical_port', port.id, {'device_id': 'vm'})
        assert races['made'] == 3
        # Read again each time: the other writes are kept, not overwritten.
        assert (patched.device_id, patched.name) == ('vm', 'other2')
        races['left'] = 2
        nb.delete('logical_switch', network.id, cascade=True)
        assert races['made'] == 5
    finally:
        nb.get = real_get
    with pytest.raises(errors.NotFound):
        nb.get('logical_port', port.id)
