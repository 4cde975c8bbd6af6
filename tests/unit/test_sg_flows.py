"""Security group flows as data: rule expansion and per-port flows."""
import types

import pytest

from dragonflow.controller import pipeline as pl
from dragonflow.controller.apps import security_groups as sg
from dragonflow.controller.state import LocalState
from dragonflow.model import base


def _covered(blocks):
    ports = set()
    for block in blocks:
        value, mask = block if isinstance(block, tuple) else (block, 0xffff)
        ports |= {p for p in range(65536) if p & mask == value}
    return ports


@pytest.mark.parametrize('low,high', [(22, 22), (1, 65535), (1000, 1999),
                                      (80, 443), (0, 7), (65535, 65535)])
def test_port_masks_cover_exactly_the_range(low, high):
    blocks = sg.port_masks(low, high)
    assert _covered(blocks) == set(range(low, high + 1))
    assert len(blocks) <= 32


def _obj(table, **data):
    return base.model_for(table).from_dict(data)


@pytest.fixture
def state():
    s = LocalState('ch1')
    s.put(_obj('logical_switch', id='net', unique_key=9, segmentation_id=5))
    s.put(_obj('security_group', id='web', unique_key=1))
    s.put(_obj('security_group', id='db', unique_key=2))
    for name, ip, key, groups in (('a', '10.0.0.5', 11, ['web']),
                                  ('b', '10.0.0.6', 12, ['db']),
                                  ('c', '10.0.0.7', 13, ['db'])):
        s.put(_obj('logical_port', id=name, network_id='net',
                   unique_key=key, ips=[ip], macs=['fa:16:3e:00:00:%02d' % key],
                   security_groups=groups))
    s.ofports['a'] = 1
    return s


def test_unprotected_port_gets_no_flows(state):
    state.put(_obj('logical_port', id='open', network_id='net', unique_key=20,
                   ips=['10.0.0.9'], macs=['fa:16:3e:00:00:20']))
    assert sg.APP().port_flows(state, state.get('logical_port', 'open')) == []


def test_group_without_rules_only_sends_ip_to_conntrack(state):
    flows = sg.APP().port_flows(state, state.get('logical_port', 'a'))
    assert {f.table for f in flows} == {pl.EGRESS_CT, pl.INGRESS_CT}
    assert all(f.actions[0][:2] == ('ct', 9) for f in flows)


def _keyed(app, state):
    """{key: flows} of the app's keyed flows."""
    return {k: app.key_flows(state, k) for k in sorted(app.keys(state))}


def test_remote_group_rules_are_conjunctions_of_port_service_members(state):
    """Flows grow as rules + members: the port gets one clause-1 flow per
    direction, the rule's service one flow, the remote group one flow per
    member address."""
    state.put(_obj('security_group_rule', id='r1', security_group_id='web',
                   direction='ingress', protocol='tcp', port_range_min=80,
                   port_range_max=81, remote_group_id='db'))
    state.put(_obj('security_group_rule', id='r2', security_group_id='web',
                   direction='egress'))
    app = sg.APP()
    flows = app.port_flows(state, state.get('logical_port', 'a'))
    cid = 1 << 3            # web's key, slot 0, remote, ingress, IPv4
    ingress = [f for f in flows if f.table == pl.INGRESS_SG]
    assert [(f.priority, f.match_dict, f.actions) for f in ingress] == [
        (sg.CONJ_PRIORITY, {'reg7': 11}, (('conjunction', cid, 1, 3),))]
    plain = 1 << 3 | 1 << 2 | 1 << 1    # web's key, plain, egress, IPv4
    egress = [f for f in flows if f.table == pl.EGRESS_SG]
    assert [(f.priority, f.match_dict, f.actions) for f in egress] == [
        (sg.PLAIN_PRIORITY, {'reg6': 11}, (('conjunction', plain, 1, 2),))]
    keyed = _keyed(app, state)
    members = {app.key('address', a) for a in ('10.0.0.6', '10.0.0.7')}
    service = app.key('rules', '15:ct_state=0x21/0x37,eth_type=0x800')
    http = app.key('services', '110:ct_state=0x21/0x37,eth_type=0x800,'
                   'ip_proto=6,tcp_dst=80/65534')
    assert set(keyed) == members | {app.key('conj', 'db'), service, http,
                                    app.key('commit', 'web')}
    [allow] = keyed[service]
    assert allow.actions == (('conjunction', plain, 2, 2),)
    [allow] = keyed[http]
    assert (allow.priority, allow.actions) == (
        sg.CONJ_PRIORITY, (('conjunction', cid, 2, 3),))
    [commit] = keyed[app.key('commit', 'web')]
    assert commit.match_dict == {'conj_id': plain, 'metadata': 9,
                                 'eth_type': pl.ETH_IP}
    assert commit.goto == pl.TAP_OUT
    for key in members:
        assert [(f.match_dict['ipv4_src'], f.actions) for f in keyed[key]] \
            == [(key[2], (('conjunction', cid, 3, 3),))]
    [commit] = keyed[app.key('conj', 'db')]
    assert commit.match_dict == {'conj_id': cid, 'metadata': 9,
                                 'eth_type': pl.ETH_IP}
    assert commit.actions == (('ct', 9, None, True),) and \
        commit.goto == pl.TAP_IN


def test_a_member_in_two_remote_groups_is_one_flow_with_both(state):
    state.put(_obj('logical_port', id='b', network_id='net', unique_key=12,
                   ips=['10.0.0.6'], macs=['fa:16:3e:00:00:12'],
                   security_groups=['db', 'web']))
    for rule_id, remote in (('r1', 'db'), ('r2', 'web')):
        state.put(_obj('security_group_rule', id=rule_id,
                       security_group_id='web', direction='ingress',
                       remote_group_id=remote))
    app = sg.APP()
    [flow] = app.key_flows(state, app.key('address', '10.0.0.6'))
    # web's rules name db (slot 0) and web (slot 1), sorted by id.
    assert flow.actions == (('conjunction', 1 << 3, 3, 3),
                            ('conjunction', 1 << 27 | 1 << 3, 3, 3))
    [flow] = app.key_flows(state, app.key('address', '10.0.0.5'))
    assert flow.actions == (('conjunction', 1 << 27 | 1 << 3, 3, 3),)


def test_groups_naming_one_remote_group_keep_their_services_apart(state):
    """web allows tcp/22 from db, db allows tcp/80 from db: a port of
    web must not accept tcp/80 from db (one conjunction per group)."""
    state.ofports['b'] = 2
    for rule_id, group, port in (('r1', 'web', 22), ('r2', 'db', 80)):
        state.put(_obj('security_group_rule', id=rule_id,
                       security_group_id=group, direction='ingress',
                       protocol='tcp', port_range_min=port,
                       port_range_max=port, remote_group_id='db'))
    app = sg.APP()
    keyed = _keyed(app, state)
    web, db = 1 << 3, 2 << 3

    def service(port):
        [flow] = keyed[app.key('services', '110:ct_state=0x21/0x37,'
                               f'eth_type=0x800,ip_proto=6,tcp_dst={port}')]
        return flow.actions
    assert service(22) == (('conjunction', web, 2, 3),)
    assert service(80) == (('conjunction', db, 2, 3),)
    [flow] = keyed[app.key('address', '10.0.0.7')]
    assert flow.actions == (('conjunction', web, 3, 3),
                            ('conjunction', db, 3, 3))
    clause = {p: [f.actions for f in app.port_flows(
        state, state.get('logical_port', p)) if f.table == pl.INGRESS_SG]
        for p in ('a', 'b')}
    assert clause == {'a': [(('conjunction', web, 1, 3),)],
                      'b': [(('conjunction', db, 1, 3),)]}


def test_rules_naming_more_remote_groups_than_slots_allow_nothing(
        state, caplog):
    for n in range(sg.SLOTS + 1):
        state.put(_obj('security_group', id=f'g{n:02d}', unique_key=100 + n))
        state.put(_obj('security_group_rule', id=f'r{n:02d}',
                       security_group_id='web', direction='ingress',
                       remote_group_id=f'g{n:02d}'))
    app = sg.APP()
    shape = app.shape(state, 'web')
    assert shape.unslotted == [f'g{sg.SLOTS:02d}']
    assert 'rules naming g32 allow nothing' in caplog.text
    [flow] = [f for f in app.port_flows(state, state.get('logical_port', 'a'))
              if f.table == pl.INGRESS_SG]
    assert len(flow.actions) == sg.SLOTS
    assert max(a[1] for a in flow.actions) >> 27 == sg.SLOTS - 1
    assert app.key_flows(state, app.key('conj', f'g{sg.SLOTS:02d}')) == []


def test_empty_remote_groups_allow_nothing(state):
    state.put(_obj('security_group', id='empty', unique_key=3))
    state.put(_obj('security_group_rule', id='r', security_group_id='web',
                   direction='ingress', remote_group_id='empty'))
    app = sg.APP()
    keyed = _keyed(app, state)
    # A commit flow and a service clause wait for a member; no address
    # can complete the match.
    assert set(keyed) == {app.key('conj', 'empty'), app.key(
        'services', '110:ct_state=0x21/0x37,eth_type=0x800')}


def test_a_group_renamed_keeps_what_the_state_derived(state):
    computed = []
    state.derived('probe', lambda: computed.append(1) or 'kept')
    state.local_group_zones()
    state.put(_obj('security_group', id='web', unique_key=1, name='www'))
    state.derived('probe', lambda: computed.append(1) or 'kept')
    assert computed == [1] and state._group_zones_dirty == set()


def test_ipv6_rules_match_ipv6(state):
    obj = _obj('security_group_rule', id='r6', security_group_id='web',
               direction='ingress', ethertype='IPv6', protocol='icmpv6',
               port_range_min=128, remote_ip_prefix='2001:db8::/64')
    assert sg.rule_matches(obj) == [{
        'eth_type': 0x86dd, 'ip_proto': 58, 'icmpv6_type': 128,
        'ipv6_src': ('2001:db8::', 'ffff:ffff:ffff:ffff::')}]


def test_pass_through_installed_only_without_the_app():
    from dragonflow.controller import apps
    without = apps.load(['classifier'])
    with_sg = apps.load(['classifier', 'security_groups'])
    # Every optional stage but those the enabled apps own.
    assert without[-1].tables == tuple(sorted(pl.PASS_THROUGH))
    assert with_sg[-1].tables == tuple(sorted(
        set(pl.PASS_THROUGH) - {pl.EGRESS_CT, pl.INGRESS_CT}))
    flows = without[-1].global_flows(types.SimpleNamespace())
    assert {(f.table, f.goto) for f in flows} == set(pl.PASS_THROUGH.items())
    # Unprotected traffic skips the rules, not the tap or firewall stages.
    assert pl.PASS_THROUGH[pl.EGRESS_CT] == pl.TAP_OUT
    assert pl.PASS_THROUGH[pl.INGRESS_CT] == pl.TAP_IN


def test_remote_addresses_follow_ports_and_rules_in_any_order():
    """The member addresses of remote groups, and the app's keys made of
    them, are kept as ports and rules come, change and go (not walked on
    every change): after every step they are what a walk of the members
    finds."""
    import random
    rng = random.Random(7)
    s = LocalState('ch1')
    s.put(_obj('logical_switch', id='net', unique_key=9, segmentation_id=5))
    groups = ['g1', 'g2', 'g3']
    for i, g in enumerate(groups, 1):
        s.put(_obj('security_group', id=g, unique_key=i))

    app = sg.APP()

    def walked():
        return {a for p in s.objects['logical_port'].values()
                for a in s.addresses_of(p)
                if set(p.security_groups) & set(s.by_remote)}
    for step in range(400):
        what = rng.random()
        if what < 0.5:
            n = rng.randrange(12)
            pairs = [{'ip_address': f'10.1.{n}.0/24'}] if n % 4 == 0 else []
            s.put(_obj('logical_port', id=f'p{n}', network_id='net',
                       unique_key=100 + n, ips=[f'10.0.0.{n % 6 + 2}'],
                       macs=['fa:16:3e:00:01:%02d' % n],
                       allowed_address_pairs=pairs,
                       security_groups=rng.sample(groups,
                                                  rng.randrange(3))))
        elif what < 0.7:
            s.remove('logical_port', f'p{rng.randrange(12)}')
        elif what < 0.9:
            n = rng.randrange(5)
            s.put(_obj('security_group_rule', id=f'r{n}',
                       security_group_id=rng.choice(groups),
                       direction='ingress', ethertype='IPv4',
                       remote_group_id=rng.choice(groups + [None])))
        else:
            s.remove('security_group_rule', f'r{rng.randrange(5)}')
        assert set(s.remote_addresses()) == walked(), step
        assert app.keys(s) == {app.key('address', a) for a in walked()} | {
            app.key('conj', g) for g in s.by_remote}, step


def _rule(rule_id, group, direction='ingress', **more):
    return _obj('security_group_rule', id=rule_id, security_group_id=group,
                direction=direction, **more)


def test_plain_rules_grow_as_rules_plus_ports(state):
    """Ten TCP rules and twenty local ports in one group: each port has
    its conntrack flows and one clause; each rule one service flow."""
    for i in range(10):
        state.put(_rule(f'r{i}', 'web', protocol='tcp',
                        port_range_min=8000 + i, port_range_max=8000 + i))
    for i in range(20):
        state.put(_obj('logical_port', id=f'p{i}', network_id='net',
                       unique_key=100 + i, ips=[f'10.0.1.{i}'],
                       macs=['fa:16:3e:00:01:%02x' % i],
                       security_groups=['web']))
        state.ofports[f'p{i}'] = 10 + i
    app = sg.APP()
    for i in range(20):
        flows = app.port_flows(state, state.get('logical_port', f'p{i}'))
        [clause] = [f for f in flows if f.table == pl.INGRESS_SG]
        assert clause.actions == (('conjunction', 1 << 3 | 1 << 2, 1, 2),)
        assert len(flows) == 5          # 4 to conntrack, 1 clause
    keyed = _keyed(app, state)
    services = [k for k in keyed if k[1] == 'rules']
    assert len(services) == 10
    assert sum(len(keyed[k]) for k in services) == 10
    [commit] = keyed[app.key('commit', 'web')]
    assert commit.match_dict['conj_id'] == 1 << 3 | 1 << 2


# Clause 2 of the plain ingress IPv4 rules of web (key 1) and db (key 2).
WEB_IN = ('conjunction', 1 << 3 | 1 << 2, 2, 2)
DB_IN = ('conjunction', 2 << 3 | 1 << 2, 2, 2)


def _ssh_in_web_and_db(state):
    """web and db both admit SSH: the app, and the key of that service."""
    for rule_id, group in (('w', 'web'), ('d', 'db')):
        state.put(_rule(rule_id, group, protocol='tcp', port_range_min=22,
                        port_range_max=22))
    app = sg.APP()
    return app, app.key('rules', '110:ct_state=0x21/0x37,eth_type=0x800,'
                                 'ip_proto=6,tcp_dst=22')


def test_a_service_two_groups_allow_is_one_flow_naming_both(state):
    state.put(_obj('logical_port', id='d', network_id='net', unique_key=14,
                   ips=['10.0.0.8'], macs=['fa:16:3e:00:00:14'],
                   security_groups=['db']))
    state.ofports['d'] = 2
    app, key = _ssh_in_web_and_db(state)
    [flow] = app.key_flows(state, key)
    assert flow.actions == (WEB_IN, DB_IN)
    # a is in web only: its clause names web's conjunction alone.
    [clause] = [f for f in app.port_flows(state, state.get('logical_port',
                                                           'a'))
                if f.table == pl.INGRESS_SG]
    assert clause.actions == (('conjunction', 1 << 3 | 1 << 2, 1, 2),)
    # Without a local port, db's rules are not programmed here.
    del state.ofports['d']
    [flow] = app.key_flows(state, key)
    assert flow.actions == (WEB_IN,)
    assert app.key('commit', 'db') not in app.keys(state)


def test_only_a_new_direction_or_version_of_plain_rules_shapes_ports(state):
    first = _rule('r1', 'web', protocol='tcp', port_range_min=22,
                  port_range_max=22)
    state.put(first)
    assert sg.rule_shapes_ports(state, first, None)
    second = _rule('r2', 'web', protocol='udp')
    state.put(second)
    assert not sg.rule_shapes_ports(state, second, None)
    state.remove('security_group_rule', 'r2')
    assert not sg.rule_shapes_ports(state, None, second)
    state.remove('security_group_rule', 'r1')
    assert sg.rule_shapes_ports(state, None, first)
    remote = _rule('r3', 'web', remote_group_id='db')
    state.put(remote)
    assert sg.rule_shapes_ports(state, remote, None)


def test_a_group_enforced_here_joins_the_service_flows_it_shares(state):
    """db's first local port: the service flow web and db share names
    db's conjunction too (touched by that port), and not after it left."""
    app, key = _ssh_in_web_and_db(state)
    assert key in app.keys(state)
    web, db = WEB_IN, DB_IN
    assert app.key_flows(state, key)[0].actions == (web,)
    port = state.get('logical_port', 'b')
    for plugged, actions in ((True, (web, db)), (False, (web,))):
        if plugged:
            state.ofports['b'] = 2
        else:
            del state.ofports['b']
        assert key in app.touched_keys(state, 'logical_port', port, port)
        assert (app.key('commit', 'db') in app.keys(state)) == plugged
        assert app.key_flows(state, key)[0].actions == actions
    # A second port of web touches no service flow: web is enforced.
    state.put(_obj('logical_port', id='a2', network_id='net', unique_key=15,
                   ips=['10.0.0.9'], macs=['fa:16:3e:00:00:15'],
                   security_groups=['web']))
    state.ofports['a2'] = 3
    port = state.get('logical_port', 'a2')
    touched = app.touched_keys(state, 'logical_port', port, port)
    assert {k for k in touched if k[1] != 'address'} == {
        app.key('commit', 'web')}


def test_local_group_zones_follow_ports_plugs_and_networks(state):
    assert state.local_group_zones() == {'web': {9: 1}}
    state.ofports['b'] = 2
    state.ofports['c'] = 3
    assert state.local_group_zones() == {'web': {9: 1}, 'db': {9: 2}}
    version = state.group_zones_version
    port = state.get('logical_port', 'b')
    state.put(_obj('logical_port', **dict(
        port.to_dict(), port_security_enabled=False)))
    assert state.local_group_zones() == {'web': {9: 1}, 'db': {9: 1}}
    assert state.group_zones_version == version     # no group came or went
    state.put(_obj('logical_switch', id='net2', unique_key=4,
                   segmentation_id=6))
    state.put(_obj('logical_port', id='c', network_id='net2',
                   unique_key=13, ips=['10.0.1.7'],
                   macs=['fa:16:3e:00:00:13'], security_groups=['web']))
    assert state.local_group_zones() == {'web': {9: 1, 4: 1}}
    assert state.group_zones_version > version      # db went
    state.remove('logical_switch', 'net2')
    assert state.local_group_zones() == {'web': {9: 1}}
    state.ofports.clear()
    assert state.local_group_zones() == {}
