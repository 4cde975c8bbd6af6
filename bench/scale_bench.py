#!/usr/bin/env python3
"""The agent at scale in the lab (root; real OVS, ZooKeeper, agents): the
scenarios of the performance issue, measured the way an operator would.

1. ``group``: P ports on one chassis and one network, all in one security
   group of 40 ingress TCP rules and egress allow-all, created in bulk and
   plugged in quick succession: plug -> every flow installed (the flow
   count stable), and the agent's CPU time for it.
2. ``cold``: those flows deleted, agent started -> all flows back.
3. ``restart``: with those flows in place, the agent restarted three times
   in a row under ``ping -i 0.01`` between two VMs on two chassis: packets
   lost, time to settle each time, and whether vswitchd ever dropped the
   controller (its inactivity probe).
4. ``idle``: the agent's RSS and CPU use with nothing changing.
5. ``batch``: 200 ports created in one batch and plugged on two chassis ->
   all bound in NB and their flows in.
6. ``cycles``: 20 cycles of 200 ports created, plugged, unplugged and
   deleted on one chassis: the agent's RSS after each (a leak shows as
   growth).

Baselines measured in the same run: the flow programming rate of
``ovs-ofctl --bundle add-flows`` for the same number of flows on the same
switch (what installing them costs at all) for 1-2, the first restart's
settle time for the later ones. ``--only NAME`` runs one scenario (and what
it needs)."""
import argparse
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'agent'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests'))

from benchlab import lab_session, wait, write_json  # noqa: E402

CLOCK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK


def rss_mb(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return 0.0


def flow_count(ch):
    out = ch.ofctl('dump-aggregate', 'br-int')
    return int(out.split('flow_count=')[1].split()[0])


def settle(ch, start, minimum, quiet=2.0, timeout=600):
    """Seconds from start until the flow count reached at least minimum
    and then stayed unchanged for quiet seconds (the quiet time is not
    counted); the count."""
    last, since = -1, time.monotonic()
    while time.monotonic() - start < timeout:
        count = flow_count(ch)
        if count != last:
            last, since = count, time.monotonic()
        elif count >= minimum and time.monotonic() - since >= quiet:
            return since - start, count
        time.sleep(0.1)
    raise RuntimeError(f'{ch.name}: flows did not settle ({last})')


def plug(ch, names_ids, batch=100):
    items = list(names_ids)
    for start in range(0, len(items), batch):
        args = []
        for name, port_id in items[start:start + batch]:
            args += ['--', 'add-port', 'br-int', name, '--', 'set',
                     'Interface', name, 'type=internal',
                     f'external_ids:iface-id={port_id}']
        ch.vsctl(*args)


def unplug(ch, names, batch=200):
    names = list(names)
    for start in range(0, len(names), batch):
        args = []
        for name in names[start:start + batch]:
            args += ['--', '--if-exists', 'del-port', 'br-int', name]
        ch.vsctl(*args)


def group_world(nb, ports):
    group = nb.create('security_group', {'name': 'scale'})
    rules = [('create', 'security_group_rule', {
        'security_group_id': group.id, 'direction': 'egress',
        'ethertype': v}) for v in ('IPv4', 'IPv6')]
    rules += [('create', 'security_group_rule', {
        'security_group_id': group.id, 'direction': 'ingress',
        'protocol': 'tcp', 'port_range_min': 2000 + i,
        'port_range_max': 2000 + i}) for i in range(40)]
    nb.write_many(rules)
    net = nb.create('logical_switch', {'name': 'scale'})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.90.0.0/16'})
    created = nb.write_many([('create', 'logical_port', {
        'network_id': net.id, 'name': f's{i}',
        'security_groups': [group.id]}) for i in range(ports)])
    return net, [p.id for p in created]


def ofctl_bundle_baseline(ch, count):
    """Seconds ovs-ofctl --bundle takes to add count flows to a scratch
    bridge of the same switch."""
    ch.vsctl('--may-exist', 'add-br', 'br-base', '--', 'set', 'Bridge',
             'br-base', 'datapath_type=netdev', 'protocols=OpenFlow13')
    path = os.path.join(ch.dir, 'base.flows')
    with open(path, 'w') as f:
        for i in range(count):
            f.write(f'table=10,priority=50,ip,reg7={i + 1},nw_src=10.1.'
                    f'{i // 250}.{i % 250},actions=resubmit(,20)\n')
    t = time.monotonic()
    ch.ofctl('--bundle', 'add-flows', 'br-base', path)
    took = time.monotonic() - t
    ch.vsctl('del-br', 'br-base')
    return took


def bench_group(lab, nb, ports):
    ch = lab.chassis['ch1']
    before_flows = flow_count(ch)
    net, ids = group_world(nb, ports)
    cpu0 = cpu_seconds(ch.controller_pid)
    start = time.monotonic()
    plug(ch, [(f'sc{i}', pid) for i, pid in enumerate(ids)])
    took, flows = settle(ch, start, before_flows + ports * 40)
    cpu = cpu_seconds(ch.controller_pid) - cpu0
    baseline = ofctl_bundle_baseline(ch, flows)
    print(f'group: {ports} ports in one group of 40 rules plugged -> '
          f'{flows} flows settled in {took:.1f} s, agent CPU {cpu:.1f} s '
          f'(baseline, same run: ovs-ofctl --bundle add-flows of as many '
          f'flows {baseline:.1f} s; ratio {took / baseline:.1f})')
    return net, ids, {'ports': ports, 'flows': flows, 'seconds': took,
                      'agent_cpu_s': cpu, 'ofctl_bundle_s': baseline}


def bench_cold(lab, flows):
    ch = lab.chassis['ch1']
    ch.stop_controller()
    ch.ofctl('del-flows', 'br-int')
    start = time.monotonic()
    ch.start_controller()
    took, count = settle(ch, start, flows - 50)
    rss = rss_mb(ch.controller_pid)
    print(f'cold start: agent start -> {count} flows in {took:.1f} s '
          f'(process start included); RSS {rss:.0f} MB')
    return {'seconds': took, 'flows': count, 'rss_mb': rss}


def probe_drops(ch):
    with open(os.path.join(ch.dir, 'ovs-vswitchd.log')) as f:
        return sum('inactivity probe' in line for line in f)


def bench_restart(lab, nb, flows, times=3):
    net = nb.create('logical_switch', {'name': 'restart'})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.91.0.0/24'})
    p1 = nb.create('logical_port', {'network_id': net.id})
    p2 = nb.create('logical_port', {'network_id': net.id})
    ch = lab.chassis['ch1']
    vm1 = lab.add_vm('rsa', ch, p1)
    vm2 = lab.add_vm('rsb', lab.chassis['ch2'], p2)
    wait(lambda: vm1.ping(p2.ips[0]), timeout=30)
    drops0 = probe_drops(ch)
    count = int(times * 40 / 0.01)
    ping = subprocess.Popen(['ip', 'netns', 'exec', vm1.ns, 'ping', '-q',
                             '-i', '0.01', '-c', str(count), p2.ips[0]],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    settles = []
    for _ in range(times):
        ch.stop_controller()
        start = time.monotonic()
        ch.start_controller()
        ch.wait_connected(timeout=300)
        took, _ = settle(ch, start, flows - 50)
        settles.append(took)
        time.sleep(3)
    ping.send_signal(signal.SIGINT)     # ping prints its summary
    out = ping.communicate(timeout=30)[0]
    line = next(x for x in out.splitlines() if 'transmitted' in x)
    sent, received = int(line.split()[0]), int(line.split()[3])
    drops = probe_drops(ch) - drops0
    print(f'restart: {times} restarts with {flows} flows under ping -i 0.01:'
          f' {sent - received} of {sent} lost; settled in '
          f'{", ".join(f"{s:.1f}" for s in settles)} s; vswitchd dropped '
          f'the controller {drops} times (inactivity probe)')
    for vm in (vm1, vm2):
        vm.unplug()
        vm.destroy()
    nb.delete('logical_switch', net.id, cascade=True)
    return {'sent': sent, 'lost': sent - received, 'settle_s': settles,
            'probe_drops': drops}


def bench_idle(lab, seconds=10):
    ch = lab.chassis['ch1']
    pid = ch.controller_pid
    time.sleep(3)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
    rss = rss_mb(pid)
    print(f'idle: agent RSS {rss:.0f} MB, CPU {cpu:.2f} % over {seconds} s '
          f'({flow_count(ch)} flows in place)')
    return {'rss_mb': rss, 'cpu_percent': cpu}


def bench_batch(lab, nb, count=200):
    net = nb.create('logical_switch', {'name': 'batch'})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.92.0.0/16'})
    chs = [lab.chassis['ch1'], lab.chassis['ch2']]
    start = time.monotonic()
    ports = nb.write_many([('create', 'logical_port', {
        'network_id': net.id, 'name': f'b{i}'}) for i in range(count)])
    halves = [ports[:count // 2], ports[count // 2:]]
    created = time.monotonic() - start
    for ch, half in zip(chs, halves):
        plug(ch, [(f'bt{i}', p.id) for i, p in enumerate(half)],
             batch=count)
    plugged = time.monotonic() - start

    def bound():
        return sum(bool(p.binding_chassis) for p in
                   nb.list('logical_port', network_id=net.id)) == count

    def flows_in():
        for ch, half in zip(chs, halves):
            table0 = ch.ofctl('dump-flows', 'br-int', 'table=0')
            if not all(f'0x{p.unique_key:x}->reg6' in table0 for p in half):
                return False
        return True
    # Flows first (a cheap dump), then NB (a listing of every port).
    wait(flows_in, timeout=120, interval=0.02)
    wait(bound, timeout=120, interval=0.02)
    took = time.monotonic() - start
    print(f'batch: {count} ports created in one batch and plugged on 2 '
          f'chassis -> all bound and classified in {took:.2f} s (created '
          f'after {created:.2f} s, plugged after {plugged:.2f} s)')
    for ch, half in zip(chs, halves):
        unplug(ch, [f'bt{i}' for i in range(len(half))])
    nb.delete('logical_switch', net.id, cascade=True)
    return {'ports': count, 'seconds': took, 'created_s': created,
            'plugged_s': plugged}


def bench_cycles(lab, nb, cycles=20, count=200):
    ch = lab.chassis['ch2']
    net = nb.create('logical_switch', {'name': 'cycles'})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.93.0.0/16'})
    rss = [rss_mb(ch.controller_pid)]
    for c in range(cycles):
        ports = nb.write_many([('create', 'logical_port', {
            'network_id': net.id}) for _ in range(count)])
        names = [f'cy{i}' for i in range(count)]
        plug(ch, zip(names, [p.id for p in ports]), batch=count)
        wait(lambda: sum(bool(p.binding_chassis) for p in nb.list(
            'logical_port', network_id=net.id)) == count, timeout=120)
        unplug(ch, names)
        for p in ports:
            nb.delete('logical_port', p.id)
        time.sleep(1)
        rss.append(rss_mb(ch.controller_pid))
    nb.delete('logical_switch', net.id, cascade=True)
    print(f'cycles: {cycles} x {count} ports created/plugged/unplugged/'
          f'deleted: agent RSS {rss[0]:.0f} MB before, {rss[1]:.0f} after '
          f'the first cycle, {rss[-1]:.0f} after the last (max '
          f'{max(rss):.0f})')
    return {'rss_mb': rss}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=1000)
    parser.add_argument('--only', choices=('group', 'cold', 'restart',
                                           'idle', 'batch', 'cycles'))
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    results = {}
    want = (lambda name: args.only in (None, name))
    with lab_session('dfs', '172.30.60.0/24', ['ch1', 'ch2']) as (lab, nb):
        if want('batch'):
            results['batch'] = bench_batch(lab, nb)
        if want('cycles'):
            results['cycles'] = bench_cycles(lab, nb)
        if any(want(n) for n in ('group', 'cold', 'restart', 'idle')):
            _, _, results['group'] = bench_group(lab, nb, args.ports)
            flows = results['group']['flows']
            if want('idle'):
                results['idle'] = bench_idle(lab)
            if want('cold'):
                results['cold'] = bench_cold(lab, flows)
            if want('restart'):
                results['restart'] = bench_restart(lab, nb, flows)
    write_json(args.json, results)


if __name__ == '__main__':
    main()
