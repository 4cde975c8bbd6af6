#!/usr/bin/env python3
"""The agent at scale in the lab (root; real OVS, ZooKeeper, agents): the
scenarios of the performance issue, measured the way an operator would.

1. ``group``: P ports on one chassis and one network, all in one security
   group of 40 ingress TCP rules and egress allow-all, created in bulk and
   plugged in quick succession: plug -> every flow installed (the flow
   count stable), and the agent's CPU time for it. Plain rules are shared
   by the ports (~26k flows for 1,000 ports); ``--rules-from-group`` makes
   them remote-group rules (conjunctions too: ~27k); ``--address-pairs N``
   gives each port N allowed address pairs (~4 flows each with
   ``--rules-from-group``: 10 make the issue's 65k-flow restart).
2. ``cold``: those flows deleted, agent started -> all flows back.
3. ``restart``: with those flows in place, the agent restarted three times
   in a row under ``ping -i 0.01`` between two VMs on two chassis: packets
   lost, time to settle each time, and whether vswitchd ever dropped the
   controller (its inactivity probe).
4. ``idle``: the agent's RSS and CPU use with nothing changing: on the
   fresh lab (no port yet) and with the group's flows in place.
5. ``batch``: 200 ports created in one batch and plugged on two chassis ->
   all bound in NB and their flows in: the median of three batches after
   a first one on the fresh lab (reported too).
6. ``first_ping``: one port created and plugged -> first ping reply from
   a VM on the other chassis (a ping every 20 ms from before).
7. ``cycles``: 20 cycles of 200 ports created, plugged, unplugged and
   deleted on one chassis: the agent's RSS after each (a leak shows as
   growth).

Baselines measured in the same run: the flow programming rate of
``ovs-ofctl --bundle add-flows`` for the same number of flows on the same
switch (what installing them costs at all) for 1-2, the first restart's
settle time for the later ones. ``--only NAME`` runs one scenario (and what
it needs). The scenarios take a control plane from ``sides``:
``vs_ovn.py`` runs them against OVN as well."""
import argparse
import os
import signal
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'agent'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests'))

from benchlab import pct, wait, write_json  # noqa: E402
from sides import classified, side_lab  # noqa: E402

CLOCK = os.sysconf('SC_CLK_TCK')


IDLE_CPU = 0.05     # a controller using less of a core is not computing


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


def settle(ch, start, minimum, quiet=2.0, timeout=600, pid=None):
    """Seconds from start until the flow count reached at least minimum
    and then stayed unchanged for quiet seconds (the quiet time is not
    counted); the count. With pid, that process (the controller) must
    also have been idle during those quiet seconds: one computing a big
    batch changes no flow for a while (a group whose ports have many
    addresses: seconds)."""
    def cpu():
        return cpu_seconds(pid) if pid else 0.0
    last, since = -1, time.monotonic()
    window, cpu_at = since, cpu()
    while time.monotonic() - start < timeout:
        count, now = ch.flow_count(), time.monotonic()
        if count != last:
            last, since = count, now
            window, cpu_at = now, cpu()
        elif count >= minimum and now - window >= quiet:
            if cpu() - cpu_at < IDLE_CPU * quiet:
                return since - start, count
            window, cpu_at = now, cpu()     # still at work: look again
        time.sleep(0.1)
    raise RuntimeError(f'{ch.name}: flows did not settle ({last})')


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
    ch.ofctl('--bundle', 'add-flows', 'br-base', path, timeout=900)
    took = time.monotonic() - t
    ch.vsctl('del-br', 'br-base')
    return took


def bench_group(lab, side, ports, rules=40, from_group=False, pairs=0):
    ch = lab.chassis['ch1']
    before_flows = ch.flow_count()
    made = side.group_world(ports, rules, from_group, pairs)
    pid = side.controller_pid(ch)
    cpu0 = cpu_seconds(pid)
    start = time.monotonic()
    ch.plug_internal([(f'sc{i}', p.id) for i, p in enumerate(made)],
                     batch=100)
    # Settled: the count still and the controller idle for 2 s once every
    # port has ten flows at least (ours about 26 a port, the rules shared;
    # OVN's 119, per port).
    took, flows = settle(ch, start, before_flows + ports * 10, pid=pid)
    cpu = cpu_seconds(pid) - cpu0
    baseline = ofctl_bundle_baseline(ch, flows)
    print(f'group: {ports} ports in one group of {rules} rules plugged -> '
          f'{flows} flows settled in {took:.1f} s, agent CPU {cpu:.1f} s '
          f'(baseline, same run: ovs-ofctl --bundle add-flows of as many '
          f'flows {baseline:.1f} s; ratio {took / baseline:.1f})')
    return {'ports': ports, 'flows': flows, 'seconds': took,
            'agent_cpu_s': cpu, 'ofctl_bundle_s': baseline}


def bench_cold(lab, side, flows):
    ch = lab.chassis['ch1']
    side.stop_controller(ch)
    ch.ofctl('del-flows', 'br-int')
    start = time.monotonic()
    side.start_controller(ch)
    took, count = settle(ch, start, flows - 50)
    rss = rss_mb(side.controller_pid(ch))
    print(f'cold start: agent start -> {count} flows in {took:.1f} s '
          f'(process start included); RSS {rss:.0f} MB')
    return {'seconds': took, 'flows': count, 'rss_mb': rss}


def lost_pings(vm, ip, action):
    """(sent, lost) of ``ping -i 0.01`` from vm to ip while action runs."""
    ping = subprocess.Popen(['ip', 'netns', 'exec', vm.ns, 'ping', '-q',
                             '-i', '0.01', ip],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    try:
        action()
    finally:
        ping.send_signal(signal.SIGINT)     # ping prints its summary
        out = ping.communicate(timeout=30)[0]
    line = next(x for x in out.splitlines() if 'transmitted' in x)
    sent, received = int(line.split()[0]), int(line.split()[3])
    return sent, sent - received


def bench_restart(lab, side, flows, times=3):
    """Baseline in the same run: the same ping as long, nothing changing
    (the userspace datapath drops the odd packet on its own)."""
    net = side.network('restart', '10.91.0.0/24')
    p1, p2 = side.ports(net, 2, 'r')
    ch = lab.chassis['ch1']
    vm1 = lab.add_vm('rsa', ch, p1)
    vm2 = lab.add_vm('rsb', lab.chassis['ch2'], p2)
    wait(lambda: vm1.ping(p2.ips[0]), timeout=30)
    drops0 = ch.probe_drops()
    settles = []

    def restarts():
        for _ in range(times):
            side.stop_controller(ch)
            start = time.monotonic()
            side.start_controller(ch)
            took, _ = settle(ch, start, flows - 50)
            settles.append(took)
            time.sleep(3)
    began = time.monotonic()
    sent, lost = lost_pings(vm1, p2.ips[0], restarts)
    quiet_sent, quiet_lost = lost_pings(
        vm1, p2.ips[0], lambda: time.sleep(time.monotonic() - began - 2))
    drops = ch.probe_drops() - drops0
    print(f'restart: {times} restarts with {flows} flows under ping -i 0.01:'
          f' {lost} of {sent} lost (baseline, nothing changing: '
          f'{quiet_lost} of {quiet_sent}); settled in '
          f'{", ".join(f"{s:.1f}" for s in settles)} s; vswitchd dropped '
          f'the controller {drops} times (inactivity probe)')
    for vm in (vm1, vm2):
        vm.unplug()
        vm.destroy()
    side.delete_network(net)
    return {'sent': sent, 'lost': lost, 'settle_s': settles,
            'probe_drops': drops, 'quiet_sent': quiet_sent,
            'quiet_lost': quiet_lost}


def bench_idle(lab, side, seconds=10):
    """RSS and CPU share of ch1's controller over seconds."""
    ch = lab.chassis['ch1']
    pid = side.controller_pid(ch)
    time.sleep(3)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
    rss = rss_mb(pid)
    print(f'idle: agent RSS {rss:.0f} MB, CPU {cpu:.2f} % over {seconds} s '
          f'({ch.flow_count()} flows in place)')
    return {'rss_mb': rss, 'cpu_percent': cpu}


def batch_round(lab, side, count):
    """One batch: (seconds to all bound and classified, created after,
    plugged after, classified after)."""
    net = side.network('batch', '10.92.0.0/16')
    chs = [lab.chassis['ch1'], lab.chassis['ch2']]
    start = time.monotonic()
    ports = side.ports(net, count, 'b')
    halves = [ports[:count // 2], ports[count // 2:]]
    names = [[f'bt{i}' for i in range(len(half))] for half in halves]
    created = time.monotonic() - start
    for ch, half, plugs in zip(chs, halves, names):
        ch.plug_internal(list(zip(plugs, [p.id for p in half])),
                         batch=count)
    plugged = time.monotonic() - start
    # Flows first (a cheap dump), then the NB (a listing of every port).
    wait(lambda: all(classified(ch, plugs)
                     for ch, plugs in zip(chs, names)),
         timeout=120, interval=0.02)
    classified_s = time.monotonic() - start
    wait(lambda: side.bound(ports), timeout=120, interval=0.02)
    took = time.monotonic() - start
    for ch, plugs in zip(chs, names):
        ch.unplug_all(plugs)
    side.delete_network(net)
    return took, created, plugged, classified_s


def bench_batch(lab, side, count=200, rounds=3):
    """The first batch on a fresh lab (cold: ZooKeeper's JIT compiler
    still at work, nothing cached), then ``rounds`` more: their median
    is the figure (a control plane in service is warm)."""
    cold = batch_round(lab, side, count)[0]
    warm = sorted((batch_round(lab, side, count) for _ in range(rounds)),
                  key=lambda r: r[0])
    took, created, plugged, classified_s = warm[len(warm) // 2]
    print(f'batch: {count} ports created in one batch and plugged on 2 '
          f'chassis -> all bound and classified in {took:.2f} s, median of '
          f'{rounds} (created after {created:.2f} s, plugged after '
          f'{plugged:.2f} s, classified after {classified_s:.2f} s); the '
          f'first batch on the fresh lab took {cold:.2f} s')
    return {'ports': count, 'seconds': took, 'created_s': created,
            'plugged_s': plugged, 'classified_s': classified_s,
            'cold_s': cold, 'rounds': [r[0] for r in warm]}


def bench_cycles(lab, side, cycles=20, count=200):
    ch = lab.chassis['ch2']
    net = side.network('cycles', '10.93.0.0/16')
    pid = side.controller_pid(ch)
    rss = [rss_mb(pid)]
    for c in range(cycles):
        ports = side.ports(net, count, f'c{c}-')
        names = [f'cy{i}' for i in range(count)]
        ch.plug_internal(list(zip(names, [p.id for p in ports])),
                         batch=count)
        wait(lambda: side.bound(ports), timeout=120)
        ch.unplug_all(names)
        side.delete_ports(ports)
        time.sleep(1)
        rss.append(rss_mb(pid))
    side.delete_network(net)
    print(f'cycles: {cycles} x {count} ports created/plugged/unplugged/'
          f'deleted: agent RSS {rss[0]:.0f} MB before, {rss[1]:.0f} after '
          f'the first cycle, {rss[-1]:.0f} after the last (max '
          f'{max(rss):.0f})')
    return {'rss_mb': rss}


def bench_first_ping(lab, side, samples=9):
    """Port create + plug on ch1 -> first reply from a VM on ch2, twice:

    - as a booting VM sees it: the VM's namespace pings every 10 ms from
      before its port exists, and asks for the target's address (ARP)
      every 10 ms until answered (with the kernel's 3 probes 50 ms apart
      the first reply came with the second probe, 50-60 ms after the
      start, on either control plane: the figure was the VM's ARP timer,
      not the time to be ready). The kernel's timer makes the steps
      ~16 ms here: most samples of either side land on the same step.
    - ``p50_static_s``: the control plane alone, to the millisecond: both
      VMs know each other's MAC (static neighbours, no ARP) and ping every
      1 ms, so the first reply comes within a millisecond of both chassis
      having the flows (the new port's, and its binding on the other)."""
    net = side.network('firstping', '10.60.0.0/24')
    (target_port,) = side.ports(net, 1, 'fpt')
    target = lab.add_vm('fptarget', lab.chassis['ch2'], target_port)
    times = {False: [], True: []}
    for i in range(2 * samples):
        static = i % 2 == 1
        name = f'fp{i}-{int(time.time())}'
        mac, ip = 'fa:16:3e:60:00:%02x' % i, f'10.60.0.{100 + i}'
        vm = lab.add_vm(f'fp{i}', lab.chassis['ch1'], types.SimpleNamespace(
            id=name, macs=[mac], ips=[ip]), plug=False)
        if static:
            vm.run('ip', 'neigh', 'replace', target_port.ips[0], 'lladdr',
                   target_port.macs[0], 'dev', 'eth0', 'nud', 'permanent')
            target.run('ip', 'neigh', 'replace', ip, 'lladdr', mac, 'dev',
                       'eth0', 'nud', 'permanent')
        else:
            vm.run('sysctl', '-qw', 'net.ipv4.neigh.eth0.retrans_time_ms=10',
                   'net.ipv4.neigh.eth0.mcast_solicit=1000')
        pinger = subprocess.Popen(
            ['ip', 'netns', 'exec', vm.ns, 'ping', '-i',
             '0.001' if static else '0.01', '-c', '30000', '-W', '1',
             target_port.ips[0]], stdout=subprocess.PIPE, text=True)
        start = time.monotonic()
        port = side.port(net, name, mac, ip)
        vm.plug()
        for line in pinger.stdout:
            if 'bytes from' in line:
                times[static].append(time.monotonic() - start)
                break
            if time.monotonic() - start > 30:
                break
        pinger.kill()
        pinger.wait()
        vm.unplug()
        vm.destroy()
        side.delete_port(port)
        if static:
            target.run('ip', 'neigh', 'del', ip, 'dev', 'eth0', check=False)
    target.unplug()
    target.destroy()
    side.delete_network(net)
    p50, p50_static = (pct(times[s], 50) if times[s] else None
                       for s in (False, True))
    for label, value, got in (('', p50, times[False]),
                              (' (static neighbours, 1 ms steps)',
                               p50_static, times[True])):
        print(f'first ping{label}: port create + plug -> first reply '
              f'across chassis: p50 {value * 1000:.0f} ms ({len(got)}/'
              f'{samples} replied)' if got else
              f'first ping{label}: no reply')
    return {'p50_s': p50, 'samples': times[False],
            'p50_static_s': p50_static, 'static_samples': times[True]}


SCENARIOS = ('batch', 'cycles', 'first_ping', 'group', 'idle', 'cold',
             'restart')


def run(side, scenarios, ports, prefix='dfs', underlay='172.30.60.0/24',
        from_group=False, pairs=0):
    """The scenarios (in SCENARIOS order) on one side's lab: figures by
    scenario. group runs first whenever idle, cold or restart are asked
    for (they measure with its flows in place); from_group: its rules
    admit the group's own members only (remote-group rules); pairs:
    allowed address pairs per port of the group."""
    results = {}
    with side_lab(side, prefix, underlay, ['ch1', 'ch2']) as (lab, control):
        print(f'--- {control.name}')
        if 'idle' in scenarios:
            results['idle_empty'] = bench_idle(lab, control)
        if 'batch' in scenarios:
            results['batch'] = bench_batch(lab, control)
        if 'cycles' in scenarios:
            results['cycles'] = bench_cycles(lab, control)
        if 'first_ping' in scenarios:
            results['first_ping'] = bench_first_ping(lab, control)
        if {'group', 'idle', 'cold', 'restart'} & set(scenarios):
            results['group'] = bench_group(lab, control, ports,
                                           from_group=from_group,
                                           pairs=pairs)
            flows = results['group']['flows']
            if 'idle' in scenarios:
                results['idle'] = bench_idle(lab, control)
            if 'cold' in scenarios:
                results['cold'] = bench_cold(lab, control, flows)
            if 'restart' in scenarios:
                results['restart'] = bench_restart(lab, control, flows)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=1000)
    parser.add_argument('--only', choices=SCENARIOS)
    parser.add_argument('--json', help='also write the figures here')
    add_world_options(parser)
    args = parser.parse_args()
    wanted = [args.only] if args.only else [
        s for s in SCENARIOS if s != 'first_ping']
    write_json(args.json, run('dragonflow', wanted, args.ports,
                              from_group=args.rules_from_group,
                              pairs=args.address_pairs))


def add_world_options(parser):
    """The group scenario's options (vs_ovn.py has them too)."""
    parser.add_argument('--rules-from-group', action='store_true',
                        help='the group\'s ingress rules admit its own '
                             'members only (remote-group rules; OVN: the '
                             'port group\'s address set)')
    parser.add_argument('--address-pairs', type=int, default=0, metavar='N',
                        help='allowed address pairs per port of the group '
                             '(OVN: more addresses of the port); with '
                             '--rules-from-group, 10 make ~67k flows for '
                             '1,000 ports')


if __name__ == '__main__':
    main()
