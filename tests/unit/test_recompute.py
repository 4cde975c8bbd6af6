"""What the controller recomputes for each kind of NB change, without a
switch: the world of world.py goes in as NB changes and interface
reports, then one change at a time; each must touch only the networks
and ports it concerns, and the flows it changes must belong to those."""
import types

import pytest

import world
from dragonflow.controller import flows as fl
from dragonflow.controller import service
from dragonflow.nb.changes import Change


class Writer:
    def __init__(self):
        self.commits = []

    def commit(self, deletes=(), adds=(), messages=()):
        self.commits.append((list(deletes), list(adds)))
        return len(self.commits[-1][0]) + len(self.commits[-1][1])


class Nb:
    def __init__(self):
        self.patches = []
        self.known = []

    def patch(self, table, obj_id, values):
        self.patches.append((table, obj_id, values))

    def write_many(self, writes, known=()):
        self.known.append({(o.table, o.id): o for o in known})
        for _, table, obj_id, values in writes:
            self.patch(table, obj_id, values)


def change(action, obj, old=None):
    """An inbox event: an NB change of obj (the new object)."""
    return ('nb', Change(None, None, obj.table, obj.id, action, old,
                         None if action == 'delete' else obj))


@pytest.fixture
def controller():
    return make_controller()


def make_controller(extra=()):
    """A controller that took in the world (and extra objects) and
    claimed its local ports, recording what it recomputes from then on."""
    conf = types.SimpleNamespace(df=types.SimpleNamespace(
        apps_list=[n for n in service.df_apps.APP_MODULES
                   if n != 'l2_normal'], check_pipeline=True))
    c = service.LocalController(conf, Nb(), None, 'ch1')
    c.writer = Writer()
    c.binding_writer.submit = lambda fn: fn()     # bindings at once
    c.datapath = None                             # no ticks
    batch = [change('create', o) for o in list(world.objects()) + list(extra)]
    batch += [('iface', (f'tap-{p}', p, n)) for p, n in
              world.OFPORTS.items()]
    batch += [('iface', ('tun-geneve', None, 20)),
              ('iface', ('tun-vxlan', None, 21))]
    c.step(batch)
    # The bindings come back as NB changes, as from ZooKeeper.
    c.step([change('update', *state_obj(c, table, obj_id, **v))
            for table, obj_id, v in c.nb.patches])
    c.recomputed = []
    c.recomputed_keys = []
    desired = c.desired

    def recording(net_ids, port_ids, keys=()):
        c.recomputed.append((set(net_ids), set(port_ids)))
        c.recomputed_keys.append(set(keys))
        return desired(net_ids, port_ids, keys)
    c.desired = recording
    c.writer.commits.clear()
    return c


def state_obj(c, table, obj_id, **changes):
    """(the object with changes, the object now)."""
    old = c.state.get(table, obj_id)
    return world.obj(table, **dict(old.to_dict(), **changes)), old


def all_flows(c):
    """Every flow the controller wants on the switch, as text."""
    return sorted(fl.text(f) for flows in c.installed._by_key.values()
                  for f in flows)


def changed_owners(c):
    deletes, adds = c.writer.commits[-1]
    return {c.installed.owner(f)[1] for f, _ in adds}, deletes


def test_the_world_is_programmed_and_local_ports_are_claimed(controller):
    assert controller.programmed == {'net', 'net2', 'vlan100', 'public'}
    # Every port of those networks has its own flows (a remote port its
    # L2 entry, any port its ARP answer).
    assert controller.programmed_ports == controller.state.port_ids(
        controller.programmed)
    bound = {obj_id for _, obj_id, v in controller.nb.patches
             if v == {'binding_chassis': 'ch1'}}
    assert bound == set(world.LOCAL_PORTS)
    assert controller.refused == 0
    # Written from the replica's objects: the ports, their networks and
    # the chassis, as the controller had them (no read first).
    (known,) = controller.nb.known
    state = controller.state
    assert set(known) == {('chassis', 'ch1')} | {
        ('logical_port', p) for p in bound} | {
        ('logical_switch', state.get('logical_port', p).network_id)
        for p in bound}
    assert all(obj is state.get(*key) for key, obj in known.items()
               if key[0] != 'logical_port')


def test_a_change_to_one_port_touches_its_network_and_its_own_flows(
        controller):
    new, old = state_obj(controller, 'logical_port', 'vm3',
                         allowed_address_pairs=[{'ip_address': '10.0.1.99'}])
    controller.step([change('update', new, old)])
    assert controller.recomputed == [({'net2'}, {'vm3'})]
    owners, deletes = changed_owners(controller)
    assert owners == {'net2'} and deletes == []


def test_a_remote_port_touches_the_address_sets_of_its_groups(
        controller):
    new, old = state_obj(controller, 'logical_port', 'vm2',
                         ips=['10.0.0.66'])
    controller.step([change('update', new, old)])
    # vm1's group "web" admits ICMP from the members of "web", vm2 too:
    # the address set changes (one address goes, one comes), vm1's own
    # flows do not.
    assert controller.recomputed == [({'net'}, {'vm2'})]
    sg = ('security_groups', 'address')
    # vm2 is also a load balancer member (of two pools): its member flows
    # for each listener and client network carry its MAC.
    lb = lb_keys(members={'http': ['m-vm2'], 'dns': ['m-dns']})
    assert controller.recomputed_keys == [{sg + ('10.0.0.6',),
                                           sg + ('10.0.0.66',)} | lb]
    owners, _ = changed_owners(controller)
    assert owners <= {'net', ('port', 'vm2'), sg + ('10.0.0.66',)} | lb


def test_a_security_group_rule_adds_its_service_flow_and_touches_no_port(
        controller):
    """Plain rules are conjunctions (rules + ports): a rule whose
    direction and IP version its group has already is one flow, shared
    by the group's ports, none of them recomputed."""
    rule = world.obj('security_group_rule', id='web-http',
                     security_group_id='web', direction='ingress',
                     protocol='tcp', port_range_min=80, port_range_max=80)
    controller.step([change('create', rule)])
    assert controller.recomputed == [(set(), set())]
    key = ('security_groups', 'rules',
           '110:ct_state=0x21/0x37,eth_type=0x800,ip_proto=6,tcp_dst=80')
    assert key in controller.recomputed_keys[-1]
    deletes, adds = controller.writer.commits[-1]
    assert deletes == [] and [fl.text(f) for f, _ in adds] == [
        'table=110, priority=45, ct_state=0x21/0x37,eth_type=0x800,'
        'ip_proto=6,tcp_dst=80 actions=conjunction(12,2/2)']


def test_a_rule_of_a_new_kind_touches_its_groups_local_ports(controller):
    """A group's first ingress IPv6 rule: its local port's clause names
    one conjunction more, committed by a new conj_id flow."""
    rule = world.obj('security_group_rule', id='web-v6',
                     security_group_id='web', direction='ingress',
                     ethertype='IPv6')
    controller.step([change('create', rule)])
    assert controller.recomputed == [(set(), {'vm1'})]
    deletes, adds = controller.writer.commits[-1]
    assert sorted(fl.text(f) for f, _ in adds) == [
        'table=110, priority=45, conj_id=13,eth_type=0x86dd,metadata=0x9 '
        'actions=ct(zone=9,commit),goto_table:112',
        'table=110, priority=45, ct_state=0x21/0x37,eth_type=0x86dd '
        'actions=conjunction(13,2/2)',
        'table=110, priority=45, reg7=0xb '
        'actions=conjunction(12,1/2),conjunction(13,1/2)']
    assert [fl.text(f) for f in deletes] == []


def test_a_remote_group_rule_of_a_known_kind_adds_its_service_flow_only(
        controller):
    """web already admits ICMP from web: admitting tcp/80 from web too is
    one more clause-2 flow, no port and no address recomputed."""
    rule = world.obj('security_group_rule', id='web-http-peers',
                     security_group_id='web', direction='ingress',
                     protocol='tcp', port_range_min=80, port_range_max=80,
                     remote_group_id='web')
    controller.step([change('create', rule)])
    assert controller.recomputed == [(set(), set())]
    assert not any(k[1] == 'address' for k in controller.recomputed_keys[-1])
    deletes, adds = controller.writer.commits[-1]
    assert deletes == [] and [fl.text(f) for f, _ in adds] == [
        'table=110, priority=40, ct_state=0x21/0x37,eth_type=0x800,'
        'ip_proto=6,tcp_dst=80 actions=conjunction(8,2/3)']


def test_a_rule_naming_a_new_remote_group_ends_as_a_fresh_start_would(
        controller):
    """A rule of web naming "adm" (sorted before "web": the slots of web's
    remote groups move) recomputes web's local port, services and the
    members of both groups; the flows are then those a controller
    starting with the rule computes, and those of the world again once
    the rule is gone."""
    group = world.obj('security_group', id='adm', unique_key=7)
    member = remote_port('admin', 'ch2', security_groups=['adm'])
    controller.step([change('create', group), change('create', member)])
    rule = world.obj('security_group_rule', id='web-adm',
                     security_group_id='web', direction='ingress',
                     protocol='tcp', port_range_min=22, port_range_max=22,
                     remote_group_id='adm')
    controller.step([change('create', rule)])
    assert controller.recomputed[-1][1] == {'vm1'}
    assert all_flows(controller) == all_flows(
        make_controller([group, member, rule]))
    controller.step([change('delete', rule, rule)])
    assert all_flows(controller) == all_flows(make_controller([group, member]))


def test_a_subnet_change_touches_its_network_only(controller):
    new, old = state_obj(controller, 'subnet', 'sub2',
                         dns_nameservers=['10.0.1.53'])
    controller.step([change('update', new, old)])
    assert controller.recomputed == [
        ({'net2'}, controller.state.port_ids({'net2'}))]


def test_unplugging_a_port_releases_it_and_removes_its_flows(controller):
    controller.step([('iface', ('tap-vm3', 'vm3', None))])
    assert controller.recomputed == [({'net2'}, {'vm3'})]
    assert ('logical_port', 'vm3', {'binding_chassis': None}) in \
        controller.nb.patches
    # Its ARP answer stays (it is still a port of net2); what it had as a
    # local port goes.
    assert not any(controller.installed.flows(app, ('port', 'vm3'))
                   for app in ('classifier', 'port_security',
                               'security_groups', 'l2', 'tunneling'))
    deletes, _ = controller.writer.commits[-1]
    assert any(dict(f.match).get('in_port') == 3 for f in deletes)


def test_every_followed_table_has_an_explicit_handler(controller):
    assert set(controller.touches) == set(service.FOLLOWED)
    service.FOLLOWED.append('bgp_peer')
    try:
        with pytest.raises(ValueError, match='no NB change handler for '
                                             'bgp_peer'):
            service.LocalController(controller.conf, Nb(), None, 'ch1')
    finally:
        service.FOLLOWED.remove('bgp_peer')


ALL = {'net', 'net2', 'vlan100', 'public'}


@pytest.mark.parametrize('table,obj_id,changes,whole,shared,ports', [
    # A router: the networks of its interfaces and its gateway network.
    ('logical_router', 'r', {'routes': []}, ALL, set(), set()),
    # An interface: its network and the router's other networks (not the
    # gateway's: what NAT puts there does not depend on interfaces).
    ('logical_router_port', 'rp2', {'mac': world.mac(0xb2)},
     {'net', 'net2', 'vlan100'}, set(), set()),
    # A floating IP: its port's own flows, and its external network's.
    ('floating_ip', 'fip', {'fixed_ip_address': '10.0.0.200'},
     set(), {'public'}, {'vm1'}),
    # A chassis (its address): every programmed network.
    ('chassis', 'ch2', {'ip': '192.0.2.22'}, ALL, set(), set()),
    ('logical_switch', 'net2', {'mtu': 1400}, {'net2'}, set(), set()),
    # Chains span networks: what is programmed here.
    ('port_chain', 'pc', {'flow_classifiers': []}, ALL, set(), set()),
    ('security_group', 'web', {'name': 'www'}, set(), set(), set()),
    ('trunk', 't', {'name': 'trunk'}, set(), set(), set()),
])
def test_what_each_kind_of_nb_change_recomputes(
        controller, table, obj_id, changes, whole, shared, ports):
    """``whole``: networks recomputed with all their ports; ``shared``:
    networks whose shared flows only are recomputed."""
    new, old = state_obj(controller, table, obj_id, **changes)
    controller.step([change('update', new, old)])
    if whole or shared or ports:
        assert controller.recomputed == [
            (whole | shared, ports | controller.state.port_ids(whole))]
    else:
        assert controller.recomputed == []
    assert controller.refused == 0


def test_a_subport_segmentation_touches_the_parent_network_and_the_child(
        controller):
    new, old = state_obj(controller, 'child_port_segmentation', 't-child',
                         segmentation_id=11)
    controller.step([change('update', new, old)])
    assert controller.recomputed == [
        ({'net', 'net2'}, controller.state.port_ids({'net2'}) | {'child'})]


LB_NETS = ('net', 'net2', 'vlan100')
LB_MEMBERS = {'http': ['m-vm2', 'm-vm3', 'm-vm1'], 'dns': ['m-dns']}


def lb_keys(listeners=(), members=None):
    """The lb app's keys of these listeners (VIP, slots) and of these
    members ({listener: [member]}), for every client network."""
    out = {('lb', 'listener', (li, net)) for li in listeners
           for net in LB_NETS}
    for li, ids in (members or {}).items():
        out |= {('lb', 'member', (m, li, net)) for m in ids
                for net in LB_NETS}
    return out


@pytest.mark.parametrize('table,obj_id,changes,keys', [
    # A member: its own flows, and the slots of its pool's listeners.
    ('member', 'm-vm3', {'weight': 3},
     lb_keys(['http'], {'http': ['m-vm3']})),
    ('pool', 'sticky', {'lb_algorithm': 'SOURCE_IP_PORT'},
     lb_keys(['dns'], {'dns': ['m-dns']})),
    ('listener', 'http', {'admin_state_up': False},
     lb_keys(['http'], {'http': LB_MEMBERS['http']})),
    ('loadbalancer', 'lb', {'name': 'web'},
     lb_keys(['http', 'dns'], LB_MEMBERS)),
])
def test_a_load_balancer_change_touches_only_its_keys(
        controller, table, obj_id, changes, keys):
    new, old = state_obj(controller, table, obj_id, **changes)
    controller.step([change('update', new, old)])
    # No network, no port: only the keys.
    assert controller.recomputed == [(set(), set())]
    assert controller.recomputed_keys == [keys]
    assert controller.refused == 0


def test_two_load_balancers_share_a_backend(controller):
    """A second VIP with the same backend (10.0.0.6:8080/tcp): the
    backend's reply flows are one key, not one per listener."""
    objs = [world.obj('logical_port', id='vip2', network_id='net',
                      unique_key=21, ips=['10.0.0.101'],
                      macs=[world.mac(21)], port_security_enabled=False),
            world.obj('loadbalancer', id='lb2', vip_subnet_id='sub',
                      vip_network_id='net', vip_address='10.0.0.101',
                      vip_port_id='vip2'),
            world.obj('pool', id='pool2', loadbalancer_id='lb2',
                      protocol='TCP', lb_algorithm='ROUND_ROBIN'),
            world.obj('listener', id='http2', loadbalancer_id='lb2',
                      protocol='TCP', protocol_port=80,
                      default_pool_id='pool2', unique_key=42),
            world.obj('member', id='m2-vm2', pool_id='pool2',
                      address='10.0.0.6', protocol_port=8080,
                      subnet_id='sub')]
    controller.step([change('create', o) for o in objs])
    assert controller.refused == 0
    backend = ('lb', 'backend', ('10.0.0.6', 8080, 'tcp', 'net'))
    assert len(controller.installed.flows('lb', backend)) == 4
    assert controller.installed.flows('lb', ('lb', 'hairpin', (
        '10.0.0.101', '10.0.0.6', 8080, 'tcp', 'net')))


def test_a_membership_record_touches_only_its_group(controller):
    """A member joining on ch2: that group's flows on its network and on
    the network its relaying router joins, nothing else."""
    new, old = state_obj(controller, 'multicast_group',
                         world.mcm.record_id('ch2', 'net', '239.1.1.1'),
                         ports=['mon2', 'vm2'])
    controller.step([change('update', new, old)])
    assert controller.recomputed == [(set(), set())]
    assert controller.recomputed_keys == [{
        ('multicast', 'group', ('net', '239.1.1.1')),
        ('multicast', 'group', ('net2', '239.1.1.1'))}]
    assert controller.refused == 0


@pytest.fixture
def plain(controller):
    """The world without what makes any port shape its network's flows:
    no service chain, no extra routes."""
    new, old = state_obj(controller, 'logical_router', 'r', routes=[])
    controller.step([change('update', new, old),
                     change('delete', controller.state.get('port_chain',
                                                           'pc'),
                            controller.state.get('port_chain', 'pc')),
                     change('create', world.obj('chassis', id='ch3',
                                                ip='192.0.2.3'))])
    controller.recomputed.clear()
    controller.recomputed_keys.clear()
    return controller


def remote_port(port_id, chassis, **extra):
    values = dict(id=port_id, network_id='net', unique_key=90,
                  ips=['10.0.0.90'], macs=[world.mac(90)],
                  binding_chassis=chassis)
    return world.obj('logical_port', **dict(values, **extra))


def test_a_remote_port_where_its_chassis_has_ports_costs_its_own_flows(
        plain):
    port = remote_port('far', 'ch2')
    plain.step([change('create', port)])
    assert plain.recomputed == [(set(), {'far'})]
    moved = remote_port('far', 'ch2', ips=['10.0.0.91'])
    plain.step([change('update', moved, port)])
    plain.step([change('delete', moved, moved)])
    assert plain.recomputed[1:] == [(set(), {'far'}), (set(), {'far'})]
    assert plain.refused == 0
    # Nothing missed: the network's shared flows as a recomputation has them.
    for app, key, flows in plain.desired({'net'}, (), ()):
        assert plain.installed.flows(app, key) == frozenset(flows), app


@pytest.mark.parametrize('chassis,extra', [
    ('ch3', {}),         # its chassis joins the network's flood list
    ('ch2', {'allowed_address_pairs': [{'ip_address': '10.0.0.199'}]}),
])
def test_a_remote_port_that_changes_the_network_recomputes_it(
        plain, chassis, extra):
    port = remote_port('far', chassis, **extra)
    plain.step([change('create', port)])
    assert plain.recomputed == [({'net'}, {'far'})]
    plain.step([change('delete', port, port)])
    assert plain.recomputed[1] == ({'net'}, {'far'})


def test_a_port_moving_to_another_chassis_recomputes_its_network(plain):
    new, old = state_obj(plain, 'logical_port', 'vm2',
                         binding_chassis='ch3')
    plain.step([change('update', new, old)])
    assert plain.recomputed[0][0] == {'net'}


@pytest.mark.parametrize('error', [OSError('no such socket'),
                                   ValueError('unparsable reply')])
def test_switch_flows_it_cannot_read_mean_a_full_replacement(controller,
                                                             error):
    def failing():
        raise error
    controller.switch_flows = failing
    assert controller._switch_flows() is None


class Ovs:
    """The bridge's stored flow generation (the full sync reads it)."""

    def __init__(self, generation):
        self.stored = generation

    def generation(self):
        return self.stored

    def next_generation(self):
        self.stored += 1
        return self.stored - 1, self.stored


class OverWriter(Writer):
    codec = types.SimpleNamespace(learned=0, fallbacks=0)

    def commit_over(self, keyed, present, keep=()):
        self.over = list(keyed)
        return 0, len(self.over)


def connect(controller, generation):
    """A switch whose bridge carries that generation, as the full sync
    finds it once connected (its flows: none; the writer records what it
    is asked to compare)."""
    from test_flowdump import Dp
    controller.ovs = Ovs(generation)
    controller.switch_flows = lambda: []
    controller.writer = OverWriter()
    controller.datapath = Dp()


def test_a_full_sync_computed_ahead_is_used_when_the_switch_connects(
        controller):
    connect(controller, 7)
    controller.datapath = None
    controller._prepare_full_sync()
    generation, count, keyed = controller.prepared
    assert generation == 7 and count == len(keyed) > 400
    connect(controller, 7)
    controller.recomputed.clear()
    controller._full_sync()
    assert controller.recomputed == []            # nothing computed again
    assert controller.writer.over == keyed and controller.prepared is None
    assert controller.sync_pending[2][1:4] == (7, count, count)


def test_a_change_or_a_new_generation_drops_the_flows_computed_ahead(
        controller):
    connect(controller, 7)
    controller.datapath = None
    controller._prepare_full_sync()
    new, old = state_obj(controller, 'logical_port', 'vm3',
                         allowed_address_pairs=[{'ip_address': '10.0.1.99'}])
    controller.step([change('update', new, old)])
    assert controller.prepared is None
    controller._prepare_full_sync()
    connect(controller, 8)            # the bridge's generation moved on
    controller.recomputed.clear()
    controller._full_sync()
    assert len(controller.recomputed) == 1        # computed afresh
    assert controller.sync_pending[2][1] == 8
    flows = {fl.text(f) for f, _, _, _ in controller.writer.over}
    assert 'table=0' in ' '.join(flows) and len(flows) > 400


def test_flows_are_computed_ahead_a_bounded_number_of_times_per_outage(
        controller):
    """A switch away for long while changes keep coming: each change drops
    what was computed ahead, but the whole set is computed again only
    PREPARES times until the switch has come and gone again."""
    connect(controller, 7)
    dp, controller.datapath = controller.datapath, None
    computed = []
    prepare = controller._prepare_full_sync
    controller._prepare_full_sync = lambda: computed.append(1) or prepare()
    for mtu in range(1300, 1310):
        controller._maybe_prepare_full_sync()
        net = controller.state.get('logical_switch', 'net')
        new, old = state_obj(controller, 'logical_switch', net.id, mtu=mtu)
        controller.step([change('update', new, old)])
        assert controller.prepared is None
    assert len(computed) == service.PREPARES
    controller.step([('datapath_lost', dp)])   # an older connection: no
    controller._maybe_prepare_full_sync()
    assert len(computed) == service.PREPARES
    controller.datapath = dp
    controller.step([('datapath_lost', dp)])
    controller._maybe_prepare_full_sync()
    assert len(computed) == service.PREPARES + 1 and controller.prepared


def test_what_lives_when_the_main_loop_starts_is_frozen(controller):
    import gc
    from dragonflow.controller import service
    gc.unfreeze()
    try:
        service.freeze_heap()
        # The replica is out of the collector's full passes now.
        assert gc.get_freeze_count() > 0
        assert not any(o is controller.state for o in gc.get_objects())
    finally:
        gc.unfreeze()
