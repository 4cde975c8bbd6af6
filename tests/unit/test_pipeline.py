"""The declared pipeline and its contracts: stages, writers, next stages,
one owner per flow, packet-ins by cookie."""
import pathlib
import types

import pytest

from dragonflow.controller import apps as df_apps
from dragonflow.controller import flows as fl
from dragonflow.controller import packet_in
from dragonflow.controller import pipeline as pl

README = pathlib.Path(__file__).parents[2] / 'README.md'


def checked_table():
    return fl.FlowTable(check=pl.check)


def refusal(table, app, key, flow):
    result = table.update([fl.Change(app, key, [flow])])
    assert len(result.refused) == 1 and not result.adds
    return result.refused[0].reason


def test_a_flow_into_an_undeclared_table_is_refused_naming_the_app():
    reason = refusal(checked_table(), 'l3', 'net', fl.Flow(61, 10))
    assert reason.startswith('app l3: flow into table 61, which the '
                             'pipeline does not declare')


def test_a_flow_by_an_app_that_does_not_write_the_stage_is_refused():
    reason = refusal(checked_table(), 'nat', 'net',
                     fl.Flow(pl.L2_LOOKUP, 10, goto=pl.EGRESS))
    assert reason == ('app nat may not write flows in stage 55 (l2_lookup) '
                      '(writers: l2, l3, multicast, provider)')


def test_a_goto_to_an_undeclared_next_stage_is_refused_naming_both():
    reason = refusal(checked_table(), 'l3', 'net',
                     fl.Flow(pl.L3_LOOKUP, 10, goto=pl.INGRESS_TUNNEL))
    assert reason == ('app l3: stage 60 (l3_lookup) may not go on to 100 '
                      '(ingress_lookup) (declared next: 70 (egress_nat), '
                      '75 (egress))')


@pytest.mark.parametrize('action', [('resubmit', pl.CLASSIFIER),
                                    ('ct', 9, pl.L2_LOOKUP, False)])
def test_resubmits_and_conntrack_recirculations_are_held_to_next(action):
    reason = refusal(checked_table(), 'security_groups', ('port', 'p'),
                     fl.Flow(pl.EGRESS_CT, 100, {'reg6': 1}, [action]))
    assert 'stage 10 (egress_ct) may not go on to' in reason


def test_refusals_raise_where_asked_and_nothing_of_the_flow_stays():
    table = checked_table()
    with pytest.raises(fl.FlowRefused, match='table 61'):
        table.replace('l3', 'net', [fl.Flow(61, 1)]).raise_refused()
    assert table.flows('l3', 'net') == frozenset()


def test_a_second_owner_of_a_flow_is_refused_and_both_are_named():
    table = checked_table()
    flow = fl.Flow(pl.EGRESS, 100, {'reg7': 5}, [('output', 3)])
    table.replace('l2', 'net1', [flow]).raise_refused()
    other = fl.Flow(pl.EGRESS, 100, {'reg7': 5}, goto=pl.EGRESS_PROVIDER)
    reason = refusal(table, 'provider', 'net2', other)
    assert reason.startswith('duplicate flow in stage 75 (egress) priority '
                             '100')
    assert "owned by app l2 key 'net1', also wanted by app provider key " \
        "'net2'" in reason
    # Deleting the second owner's copy cannot remove the first's flow.
    assert table.replace('provider', 'net2', []).deletes == []
    assert table.owner(flow) == ('l2', 'net1')


def test_a_flow_moving_between_keys_in_one_batch_is_not_a_conflict():
    table = checked_table()
    flow = fl.Flow(pl.INGRESS_NAT, 100, {'arp_tpa': '172.24.4.50'},
                   [('in_port',)])
    table.replace('nat', 'net-b', [flow]).raise_refused()
    result = table.update([fl.Change('nat', 'net-a', [flow]),
                           fl.Change('nat', 'net-b', [])]).raise_refused()
    # It stays on the switch: no delete, and the add is owned by net-a.
    assert result.deletes == [] and result.adds == [('nat', flow)]
    assert table.owner(flow) == ('nat', 'net-a')


def test_changed_actions_replace_the_flow_in_place():
    table = checked_table()
    old = fl.Flow(pl.EGRESS, 100, {'reg7': 5}, [('output', 3)])
    new = fl.Flow(pl.EGRESS, 100, {'reg7': 5}, [('output', 4)])
    table.replace('l2', 'net', [old])
    result = table.replace('l2', 'net', [new])
    assert result.adds == [('l2', new)] and result.deletes == []


def test_every_app_writes_and_owns_only_declared_stages():
    names = set(df_apps.APP_MODULES) | {pl.PASS_THROUGH_APP}
    for stage in pl.STAGES:
        assert set(stage.owners) <= stage.writers <= names, stage.name
        assert all(t in pl.BY_ID for t in stage.next), stage.name
        assert stage.pass_through in (None, *stage.next), stage.name


def test_two_enabled_owners_of_a_stage_are_refused():
    with pytest.raises(ValueError, match='apps classifier and l2_normal '
                                         'both own stage 0'):
        pl.owners(['classifier', 'l2_normal'])


def test_the_readme_shows_the_declared_pipeline():
    assert pl.markdown() in README.read_text(), \
        'README pipeline table differs: paste python3 -m ' \
        'dragonflow.controller.pipeline'


# --- packet-ins by cookie ------------------------------------------------
class Recorder(df_apps.App):
    def __init__(self, name, cookie, packet_ins=None, reasons=None):
        super().__init__()
        self.name, self.cookie = name, cookie
        self.packet_ins = packet_ins or {}
        self.switch_packet_ins = reasons or {}
        self.got = []

    def handle(self, state, msg, send_packet):
        self.got.append(msg)


def msg(cookie, table, reason=packet_in.OFPR_ACTION, generation=7):
    return types.SimpleNamespace(cookie=generation << 32 | cookie,
                                 table_id=table, reason=reason)


def test_a_packet_in_goes_to_the_app_of_its_cookie_and_table_only():
    dhcp = Recorder('dhcp', 6, {pl.DHCP: 'handle'})
    dhcpv6 = Recorder('dhcpv6', 16, {pl.DHCP: 'handle'})
    router = packet_in.PacketInRouter([dhcp, dhcpv6])
    app, handler = router.route(msg(16, pl.DHCP))
    assert app is dhcpv6 and handler == dhcpv6.handle


def test_a_packet_in_with_a_foreign_cookie_reaches_no_app_and_is_counted():
    dhcp = Recorder('dhcp', 6, {pl.DHCP: 'handle'})
    router = packet_in.PacketInRouter([dhcp])
    assert router.route(msg(99, pl.DHCP)) is None
    assert router.route(msg(6, pl.ND_RESPONDER)) is None      # wrong table
    assert router.route(msg(6, pl.DHCP, packet_in.OFPR_NO_MATCH)) is None
    assert sum(router.unclaimed.values()) == 3
    assert router.unclaimed[(packet_in.OFPR_ACTION, 99, pl.DHCP)] == 1


def test_switch_raised_packet_ins_go_to_the_one_app_declaring_the_reason():
    icmp = Recorder('router_icmp', 11, {pl.L3_LOOKUP: 'handle'},
                    {packet_in.OFPR_INVALID_TTL: 'handle'})
    router = packet_in.PacketInRouter([icmp])
    # An l3 flow's dec_ttl failed: the cookie is l3's.
    assert router.route(msg(7, pl.L3_LOOKUP,
                            packet_in.OFPR_INVALID_TTL))[0] is icmp
    with pytest.raises(ValueError, match='both handle packet-ins'):
        packet_in.PacketInRouter([icmp, Recorder(
            'other', 12, reasons={packet_in.OFPR_INVALID_TTL: 'handle'})])


def test_an_app_may_only_ask_for_packet_ins_of_a_stage_it_writes():
    with pytest.raises(ValueError, match='app dhcp asks for packet-ins '
                                         'from table 60'):
        packet_in.PacketInRouter([Recorder('dhcp', 6,
                                           {pl.L3_LOOKUP: 'handle'})])


def test_the_shipped_apps_declarations_load():
    apps = df_apps.load(list(df_apps.APP_MODULES.keys() - {'l2_normal'}))
    router = packet_in.PacketInRouter(apps)
    assert {a.name for a, _ in router.by_cookie.values()} == {
        'dhcp', 'dhcpv6', 'nd_responder', 'router_advertisement', 'nat',
        'router_icmp', 'fwaas', 'multicast'}
