"""Service registration and health against a real ZooKeeper."""
import os
import subprocess
import sys
import time

from dragonflow.nb import health

HERE = os.path.dirname(os.path.abspath(__file__))


def state_of(nb, service_id, down_time):
    rows = {r['id']: r for r in health.service_status(nb, down_time)}
    return rows[service_id]


def wait_state(nb, service_id, down_time, want, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = state_of(nb, service_id, down_time)
        if row['state'] == want:
            return row, timeout - (deadline - time.monotonic())
        time.sleep(0.1)
    raise AssertionError(f'{service_id} not {want} within {timeout}s')


def test_service_that_stops_heartbeating_is_reported_down(nb):
    nb.create('chassis', {'id': 'ch1', 'ip': '192.0.2.1'})
    reporter = health.ServiceReporter(nb, 'df-local-controller', 'ch1',
                                      'host1', report_interval=0.2).start()
    sid = reporter.id
    row = state_of(nb, sid, down_time=1.0)
    assert row['state'] == 'up' and row['session'] and row['host'] == 'host1'
    chassis = health.chassis_status(nb, down_time=1.0)
    assert [(c['id'], c['state']) for c in chassis] == [('ch1', 'up')]

    reporter._stop.set()             # hung daemon: session alive, no beats
    reporter._thread.join()
    row, waited = wait_state(nb, sid, 1.0, 'down', timeout=5)
    assert row['session'] and 0.5 < waited < 3
    assert health.chassis_status(nb, 1.0)[0]['state'] == 'down'


def test_heartbeats_do_not_touch_the_change_log(nb):
    reporter = health.ServiceReporter(nb, 'df-bgp', 'ch2', 'host2',
                                      report_interval=0.05).start()
    log = nb.store.layout.log
    before = len(nb.client.get_children(log))
    beats = reporter.beats
    time.sleep(0.5)
    assert reporter.beats >= beats + 5
    assert len(nb.client.get_children(log)) == before
    reporter.stop()


def test_killed_process_presence_vanishes_when_its_session_expires(
        nb, zk_server, nb_root):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, 'service_process.py'),
         zk_server.address, nb_root, 'ch9', '0.2'],
        stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == 'registered'
        sid = health.service_id('ch9', 'df-test-daemon')
        # A long down time isolates the session: only presence can flip it.
        assert state_of(nb, sid, down_time=600)['state'] == 'up'
        proc.kill()
        proc.wait()
        row, waited = wait_state(nb, sid, 600, 'down', timeout=15)
        assert not row['session']
        assert waited < 10          # session timeout 2 s, plus ticks
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
