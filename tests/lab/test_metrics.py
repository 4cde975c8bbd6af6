"""Prometheus /metrics of df-local-controller on the lab's agents: NB
changes and lag move with a change, flows per app and table add up to the
switch's flows, ZooKeeper is connected, the process collector is there."""
from lab_harness.scrape import scrape, total
from waiting import wait_until

PORT = 9110


def test_an_nb_change_moves_the_counters_and_the_lag(topo, lab):
    ch1 = lab.chassis['ch1']
    before = scrape(ch1.ns, PORT)
    net = topo.network('10.79.0.0/24')
    a = topo.vm(net, 'ch1')
    topo.wait_bound(a)

    def moved():
        now = scrape(ch1.ns, PORT)
        return (total(now, 'dragonflow_nb_changes_applied_total',
                      table='logical_port') >
                total(before, 'dragonflow_nb_changes_applied_total',
                      table='logical_port') and
                total(now, 'dragonflow_nb_lag_seconds_count') >
                total(before, 'dragonflow_nb_lag_seconds_count'))
    wait_until(moved, 20, message='NB counters and lag moved')
    now = scrape(ch1.ns, PORT)
    assert total(now, 'dragonflow_zookeeper_connected') == 1
    assert total(now, 'process_resident_memory_bytes') > 10e6
    assert total(now, 'dragonflow_full_syncs_total') >= 1
    assert total(now, 'dragonflow_bundle_commits_total') >= 1
    # the lag of a change in the lab: well under a few seconds
    assert total(now, 'dragonflow_nb_lag_seconds_bucket', le='5.0') == \
        total(now, 'dragonflow_nb_lag_seconds_count')
    # flows per app and table add up to what br-int holds (counted every
    # 10 s by the agent)
    wait_until(lambda: total(scrape(ch1.ns, PORT), 'dragonflow_flows') ==
               ch1.flow_count(), 30, message='flows gauge = switch flows')
    assert total(scrape(ch1.ns, PORT), 'dragonflow_flows', app='l2') > 0
    assert total(scrape(ch1.ns, PORT), 'dragonflow_local_ports') >= 1
