#!/usr/bin/env python3
"""Controller benchmarks in the lab (root; real OVS, ZooKeeper, agents).

Prints figures and ratios against baselines measured in the same run:

1. flow programming: N flows through the agent's flow layer (FlowMods
   from byte templates, one atomic ONF bundle, then a barrier) vs
   ``ovs-ofctl add-flows`` and
   ``ovs-ofctl --bundle add-flows`` of the same flows on the same bridge;
2. NB change -> flows present on every chassis (p50/p99), for port create
   and delete, with 2 and 5 chassis;
3. port create -> first successful ping;
4. cold start of an agent with P local ports: time to full sync, RSS;
5. agent restart under ``ping -i 0.002``: packets lost.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'agent'))
# The lab harness lives with the tests, not in the product.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests'))

from dragonflow.controller import flows as fl  # noqa: E402
from benchlab import lab_session, pct, write_json  # noqa: E402
from lab_harness.netlab import sh  # noqa: E402
from sides import Dragonflow  # noqa: E402
import scale_bench  # noqa: E402


def bench_flows(n):
    """The flows used by the programming benchmark."""
    out = []
    for i in range(n):
        mac = '02:%02x:%02x:%02x:%02x:%02x' % tuple(
            (i >> s) & 0xff for s in (32, 24, 16, 8, 0))
        out.append(fl.Flow(55, 100, {'metadata': i // 100 + 1,
                                     'eth_dst': mac},
                           [('set_field', 'reg7', i + 1)], goto=75))
    return out


def ofctl_text(flow):
    match = dict(flow.match)
    return (f'table={flow.table},priority={flow.priority},'
            f'metadata={match["metadata"]},dl_dst={match["eth_dst"]},'
            f'actions=set_field:{flow.actions[0][2]}->reg7,'
            f'goto_table:{flow.goto}')


# --- 1: flow programming, run inside the chassis namespace ---------------
def inner_flow_rate(n, port, result_file):
    """Runs in the chassis namespace: an os-ken app programs n flows on
    br-bench when it connects, then writes its timing to result_file."""
    from os_ken import cfg as osken_cfg
    from os_ken.base import app_manager
    from os_ken.controller import ofp_event
    from os_ken.controller.handler import CONFIG_DISPATCHER, \
        MAIN_DISPATCHER, set_ev_cls
    from os_ken.lib import hub
    from os_ken.ofproto import ofproto_v1_3
    import os_ken.controller.controller  # noqa: F401
    from dragonflow.controller import flowcodec, ofswitch

    flows = bench_flows(n)
    done = hub.Event()
    timing = {}

    class Bench(app_manager.OSKenApp):
        OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

        @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
        def features(self, ev):
            dp = ev.msg.datapath
            hub.spawn(self.program, dp)

        def program(self, dp):
            hub.sleep(0.5)
            # Warm the encoder's template (one shape) outside the timing,
            # as a running agent has.
            writer = flowcodec.FlowWriter(dp)
            writer.codec.encode(flows[0], 'add', 1)
            start = time.perf_counter()
            writer.commit(adds=[(f, 1) for f in flows])
            built = time.perf_counter()
            ofswitch.send_all(dp, [ofswitch.barrier(dp)])
            timing['start'], timing['built'] = start, built

        @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
        def barrier_reply(self, ev):
            timing['end'] = time.perf_counter()
            done.set()

    conf = osken_cfg.CONF
    conf([], project='os_ken')
    conf.set_override('ofp_listen_host', '127.0.0.1')
    conf.set_override('ofp_tcp_listen_port', port)
    manager = app_manager.AppManager.get_instance()
    manager.applications_cls['bench'] = Bench
    manager.load_apps(['os_ken.controller.ofp_handler'])
    manager.applications_cls['bench'] = Bench
    services = manager.instantiate_apps(**manager.create_contexts())
    services.append(hub.spawn(lambda: done.wait(120)))
    done.wait(120)
    with open(result_file, 'w') as f:
        json.dump({'build': timing['built'] - timing['start'],
                   'total': timing['end'] - timing['start']}, f)
    os._exit(0)


def bench_flow_rate(lab, n):
    ch = lab.chassis['ch1']
    port = 6660
    ch.vsctl('--may-exist', 'add-br', 'br-bench', '--', 'set', 'Bridge',
             'br-bench', 'datapath_type=netdev', 'fail_mode=secure',
             'protocols=OpenFlow13')
    text = os.path.join(lab.dir, 'flows.txt')
    with open(text, 'w') as f:
        f.write('\n'.join(ofctl_text(fl_) for fl_ in bench_flows(n)) + '\n')

    def timed(*args):
        ch.ofctl('del-flows', 'br-bench')
        start = time.perf_counter()
        sh('ovs-ofctl', *args, 'br-bench', text, ns=ch.ns, env=ch.env)
        return time.perf_counter() - start
    plain = timed('-O', 'OpenFlow13', 'add-flows')
    bundle = timed('-O', 'OpenFlow13', '--bundle', 'add-flows')
    ch.ofctl('del-flows', 'br-bench')
    result = os.path.join(lab.dir, 'flow_rate.json')
    proc = subprocess.Popen(
        ['ip', 'netns', 'exec', ch.ns, sys.executable, __file__, '--inner',
         str(n), str(port), result], env=dict(ch.env, PYTHONPATH=os.path.join(
             HERE, '..', 'agent')))
    ch.vsctl('set-controller', 'br-bench', f'tcp:127.0.0.1:{port}')
    proc.wait(180)
    with open(result) as f:
        agent = json.load(f)
    count = len(ch.flows('br-bench'))
    ch.vsctl('del-br', 'br-bench')
    print(f'flows: {n} flows, ovs-ofctl add-flows {plain:.2f} s, '
          f'ovs-ofctl --bundle {bundle:.2f} s, agent {agent["total"]:.2f} s '
          f'(encoding and sending in one bundle {agent["build"]:.2f} s); '
          f'installed '
          f'{count}')
    print(f'flows: ratio agent speed / add-flows {plain / agent["total"]:.2f}, '
          f'/ --bundle {bundle / agent["total"]:.2f} (target >= 1.0)')
    return {'flows': n, 'ofctl_s': plain, 'ofctl_bundle_s': bundle,
            'agent_s': agent['total'], 'agent_build_s': agent['build']}


# --- 2: NB change -> flows on every chassis ------------------------------
def flows_contain(chassis, needle):
    return needle in chassis.ofctl('dump-flows', 'br-int', 'table=25')


def wait_all(chassis_list, needle, present, timeout=10):
    """Seconds until every chassis has (or lacks) a flow with needle; each
    chassis is polled by its own thread (one ovs-ofctl dump is ~20 ms)."""
    start = time.monotonic()
    seen = {}

    def poll(chassis):
        while time.monotonic() - start < timeout:
            if flows_contain(chassis, needle) == present:
                seen[chassis.name] = time.monotonic() - start
                return
    threads = [threading.Thread(target=poll, args=(c,)) for c in chassis_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return max(seen.values()) if len(seen) == len(chassis_list) else None


def bench_propagation(lab, nb, n_chassis, samples):
    names = [f'ch{i}' for i in range(1, n_chassis + 1)]
    chassis = [lab.chassis[n] for n in names]
    net = nb.create('logical_switch', {'name': f'prop{n_chassis}'})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.50.0.0/16'})
    anchors = []
    for ch in chassis:      # one local port per chassis: all program net
        port = nb.create('logical_port', {'network_id': net.id})
        anchors.append(lab.add_vm(f'a{n_chassis}{ch.name}', ch, port))
    for vm in anchors:
        wait_all(chassis, f'arp_tpa={nb.get("logical_port", vm.port_id).ips[0]}',
                 True, timeout=30)
    created, deleted = [], []
    for i in range(samples):
        port = nb.create('logical_port', {'network_id': net.id,
                                          'binding_chassis': names[0]})
        t = wait_all(chassis, f'arp_tpa={port.ips[0]},', True)
        created.append(t)
        nb.delete('logical_port', port.id)
        deleted.append(wait_all(chassis, f'arp_tpa={port.ips[0]},', False))
    for vm in anchors:
        vm.unplug()
        vm.destroy()
    nb.delete('logical_switch', net.id, cascade=True)
    ok_c = [t for t in created if t is not None]
    ok_d = [t for t in deleted if t is not None]
    print(f'propagation: {n_chassis} chassis, port create -> flows on all: '
          f'p50 {pct(ok_c, 50) * 1000:.0f} ms p99 {pct(ok_c, 99) * 1000:.0f} '
          f'ms; delete: p50 {pct(ok_d, 50) * 1000:.0f} ms p99 '
          f'{pct(ok_d, 99) * 1000:.0f} ms ({len(ok_c)}/{samples} seen; '
          f'resolution: one ovs-ofctl dump, ~20 ms)')
    return {'chassis': n_chassis, 'create_p50_ms': pct(ok_c, 50) * 1000,
            'create_p99_ms': pct(ok_c, 99) * 1000,
            'delete_p50_ms': pct(ok_d, 50) * 1000,
            'delete_p99_ms': pct(ok_d, 99) * 1000}


# --- 3: port create -> first ping: scale_bench's (shared with vs_ovn) ----
def bench_first_ping(lab, samples):
    side = Dragonflow(lab)
    try:
        return scale_bench.bench_first_ping(lab, side, samples)
    finally:
        side.close()


# --- 4: cold start with many local ports ----------------------------------
def rss_kb(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def bench_cold_start(lab, nb, ports):
    ch = lab.chassis['ch3']
    net = nb.create('logical_switch', {'name': 'cold'})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.70.0.0/16'})
    ids = []
    for i in range(ports):
        ids.append(nb.create('logical_port', {'network_id': net.id}).id)
    ch.stop_controller()
    for start in range(0, ports, 100):
        args = []
        for j, port_id in enumerate(ids[start:start + 100], start):
            args += ['--', 'add-port', 'br-int', f'cold{j}', '--', 'set',
                     'Interface', f'cold{j}', 'type=internal',
                     f'external_ids:iface-id={port_id}']
        ch.vsctl(*args)
    ch.ofctl('del-flows', 'br-int')
    t0 = time.monotonic()
    ch.start_controller()
    expected = None
    last, stable_since = -1, None
    while time.monotonic() - t0 < 300:
        count = len(ch.flows())
        if count != last:
            last, stable_since = count, time.monotonic()
        elif count > ports * 5 and time.monotonic() - stable_since > 2:
            expected = count
            break
        time.sleep(0.2)
    elapsed = stable_since - t0
    rss = rss_kb(ch.controller_pid) / 1024
    print(f'cold start: {ports} local ports, agent start -> {expected} flows '
          f'installed in {elapsed:.1f} s (process start included); agent '
          f'RSS {rss:.0f} MB')
    ch.stop_controller()
    for start in range(0, ports, 200):
        args = []
        for j in range(start, min(ports, start + 200)):
            args += ['--', '--if-exists', 'del-port', 'br-int', f'cold{j}']
        ch.vsctl(*args)
    nb.delete('logical_switch', net.id, cascade=True)
    ch.start_controller()
    ch.wait_connected()
    return {'ports': ports, 'flows': expected, 'seconds': elapsed,
            'rss_mb': rss}


# --- 5: restart under fast ping --------------------------------------------
def bench_restart_loss(lab, nb):
    net = nb.create('logical_switch', {'name': 'restart'})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.80.0.0/24'})
    p1 = nb.create('logical_port', {'network_id': net.id})
    p2 = nb.create('logical_port', {'network_id': net.id})
    vm1 = lab.add_vm('rs1', lab.chassis['ch1'], p1)
    vm2 = lab.add_vm('rs2', lab.chassis['ch2'], p2)
    deadline = time.monotonic() + 30
    while not vm1.ping(p2.ips[0]) and time.monotonic() < deadline:
        pass
    ping = subprocess.Popen(['ip', 'netns', 'exec', vm1.ns, 'ping', '-q',
                             '-i', '0.002', '-c', '3000', p2.ips[0]],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    for name in ('ch1', 'ch2'):
        lab.chassis[name].stop_controller()
        lab.chassis[name].start_controller()
    out = ping.communicate(timeout=120)[0]
    line = next(x for x in out.splitlines() if 'transmitted' in x)
    sent, received = int(line.split()[0]), int(line.split()[3])
    print(f'restart: both agents restarted under ping -i 0.002: '
          f'{sent - received} of {sent} lost')
    for vm in (vm1, vm2):
        vm.unplug()
        vm.destroy()
    nb.delete('logical_switch', net.id, cascade=True)
    return {'sent': sent, 'lost': sent - received}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--inner':
        return inner_flow_rate(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--flows', type=int, default=10000)
    parser.add_argument('--samples', type=int, default=20)
    parser.add_argument('--cold-ports', type=int, default=1000)
    parser.add_argument('--only', choices=['flows', 'propagation',
                                           'first_ping', 'restart', 'cold'],
                        help='run one benchmark')
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    results = {}
    with lab_session('dfb', '172.30.50.0/24',
                     [f'ch{i}' for i in range(1, 6)]) as (lab, nb):
        want = (lambda name: args.only in (None, name))
        if want('flows'):
            results['flow_rate'] = bench_flow_rate(lab, args.flows)
        if want('propagation'):
            results['propagation'] = [
                bench_propagation(lab, nb, n, args.samples) for n in (2, 5)]
        if want('first_ping'):
            results['first_ping'] = bench_first_ping(lab, 5)
        if want('restart'):
            results['restart'] = bench_restart_loss(lab, nb)
        if want('cold'):
            results['cold_start'] = bench_cold_start(lab, nb,
                                                     args.cold_ports)
    write_json(args.json, results)


if __name__ == '__main__':
    main()
