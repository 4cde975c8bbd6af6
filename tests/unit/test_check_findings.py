"""dfctl check's findings from health rows and agent answers (pure
logic; the lab proves them on real agents)."""
from dragonflow.trace import check


def row(**kw):
    base = {'id': 'ch1.df-local-controller', 'binary': 'df-local-controller',
            'chassis': 'ch1', 'state': 'up', 'since': 60.0, 'session': True,
            'last_heartbeat': 100.0}
    return dict(base, **kw)


def test_a_service_down_says_why():
    gone, hung = check.services([row(state='down', session=False),
                                 row(state='down', last_heartbeat=10.0),
                                 row()], now=100.0)
    assert 'down since 1970-01-01T00:01:00Z: its ZooKeeper session is ' \
        'gone' in gone.text
    assert hung.text.endswith('last heartbeat 90 s ago (hung?)')


def test_agent_answers():
    assert check.agent_findings('ch1', None)[0].text == (
        'chassis ch1: df-local-controller is up but did not answer the '
        'health request in time')
    answer = {'connected': False, 'tunnels': {'geneve': None, 'vxlan': 2},
              'missing': [{'app': 'l2', 'table': 75, 'stage': '75 (egress)',
                           'priority': 100, 'count': 2}],
              'extra': [], 'stale': [], 'refused': 1,
              'unknown': [{'cookie': '0x99', 'table': 55, 'priority': 1,
                           'count': 1}]}
    assert [f.text for f in check.agent_findings('ch1', answer)] == [
        'chassis ch1: br-int is not connected to the agent',
        'chassis ch1: no geneve tunnel port on br-int',
        'chassis ch1: 2 flow(s) of app l2 missing in table 75 (egress) '
        'priority 100',
        "chassis ch1: 1 flow(s) with cookie 0x99 (no app's) in table 55 "
        'priority 1',
        'chassis ch1: 1 flow(s) refused by the pipeline check since the '
        'agent started (see its log)']


def test_flows_the_switch_learned_are_no_drift():
    import collections
    import types

    from dragonflow.controller import ofswitch
    from dragonflow.controller import pipeline as pl
    from dragonflow.controller import tracer
    me = types.SimpleNamespace(apps={17: 'lb'})
    wanted = collections.Counter({('lb', pl.LB_SELECT, 50): 1,
                                  ('lb', pl.LB_AFFINITY, 0): 1})
    dumped = [(ofswitch.cookie(3, 17), pl.LB_SELECT, 50),
              (ofswitch.cookie(3, 17), pl.LB_AFFINITY, 0),
              (0, pl.LB_AFFINITY, 100), (0, pl.LB_AFFINITY, 100)]
    found = tracer.Tracer.compare(me, wanted, 3, dumped)
    assert found['flows'] == 2 and not (found['missing'] or found['extra']
                                        or found['unknown'])
