"""The agent's log is one line per event with key=value fields, also
through an expected fault (ovs-vswitchd killed and restarted: the switch
goes away and comes back), so journalctl can be grepped by port."""
import os
import re

from waiting import wait_until

LINE = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} '
                  r'(DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ')


def test_one_line_per_event_with_fields_through_a_switch_restart(topo, lab):
    ch1 = lab.chassis['ch1']
    path = os.path.join(ch1.dir, 'controller.log')
    start = os.path.getsize(path)
    net = topo.network('10.78.0.0/24')
    a = topo.vm(net, 'ch1')
    b = topo.vm(net, 'ch2')
    topo.wait_bound(a)
    topo.wait_bound(b)
    wait_until(lambda: a.ping(b.ip), 30, message='a pings b')

    def syncs():
        with open(path) as f:
            f.seek(start)
            return f.read().count('full sync done')
    before = syncs()
    ch1.restart_vswitchd()
    wait_until(lambda: syncs() > before, 60, message='agent synced again')
    wait_until(lambda: a.ping(b.ip), 30, message='a pings b again')
    with open(path) as f:
        f.seek(start)
        lines = f.read().splitlines()
    odd = [line for line in lines if not LINE.match(line)]
    assert odd == [], odd[:10]
    bound = [line for line in lines if f'port {a.port.id} bound to ch1'
             in line]
    assert bound and bound[0].endswith(f'chassis=ch1 port={a.port.id}')
    assert any('connected datapath=' in line for line in lines)
    assert any('full sync done' in line and 'generation=' in line
               for line in lines)
