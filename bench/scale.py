#!/usr/bin/env python3
"""Read scale-out: N simulated chassis following one NB (no root).

Each simulated chassis is the real thing minus the switch: its own
ZooKeeper session, the agent's NB selection (``Selection``: the shared
feed and its local port's topic), and a ``LocalController`` with every app
of the full set computing flows into a counter. They run in a few
processes (threads inside), all with a port in one network, so every
change of that network concerns every chassis. The bench starts a 3-node
ZooKeeper ensemble and reports, for N chassis:

- change -> flows computed on all N chassis: p50/p99 over the changes
  (a new port on that network each time; the next change is written once
  every chassis has computed the previous one, and at most ``--rate`` per
  second, so the figure is the latency of one change, not a backlog), and
  the CPU the N chassis used per change;
- the resync after the ZooKeeper leader is killed: time from the kill
  until a change written once the new leader serves has been computed by
  all N chassis.

Baseline in the same run: one chassis alone (N=1), the cost of the change
itself with no fan-out.
"""
import argparse
import collections
import logging
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'agent'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests'))

from lab_harness.zookeeper import ZkEnsemble  # noqa: E402
from dragonflow.nb.api import NbApi  # noqa: E402
from dragonflow.store import zk  # noqa: E402
from benchlab import pct, write_json  # noqa: E402

ROOT = '/bench-scale'


def connect(hosts):
    client = zk.make_client(hosts, timeout=20)
    client.start(timeout=60)
    return client


class Counter:
    def __init__(self):
        self.changes = 0

    def commit(self, deletes=(), adds=(), messages=()):
        self.changes += len(deletes) + len(adds)
        return len(deletes) + len(adds)


def _chassis_process(hosts, names, ports, ready, out, stop, counted):
    """Simulated chassis names[i] with local port ports[i]; reports, per
    probe port seen, when each chassis had computed its flows."""
    logging.basicConfig(level=logging.ERROR)
    from dragonflow.controller import service
    from dragonflow.controller.selection import Selection
    conf = types.SimpleNamespace(df=types.SimpleNamespace(
        apps_list=[a for a in service.df_apps.APP_MODULES
                   if a != 'l2_normal'], check_pipeline=True))
    lock = threading.Lock()
    pending = collections.defaultdict(list)
    wake = threading.Event()
    chassis = []
    for name, port_id in zip(names, ports):
        client = connect(hosts)
        nb = NbApi(client, ROOT)
        ctl = service.LocalController(conf, nb, None, name)
        ctl.writer = Counter()
        ctl.binding_writer.submit = lambda fn: None   # bound already

        def arrived(change, name=name):
            with lock:
                pending[name].append(change)
            wake.set()
        selection = Selection(nb, arrived, service.FOLLOWED, name=name)
        selection.start()
        selection.interface('tap0', port_id)
        chassis.append((name, port_id, client, ctl, selection))
    for name, port_id, _, ctl, selection in chassis:
        selection.wait_synced(300)
    seen = collections.defaultdict(dict)     # probe name -> chassis -> t
    controllers = {name: ctl for name, _, _, ctl, _ in chassis}
    plugged = set()

    def work():
        while not stop.is_set():
            wake.wait(0.2)
            wake.clear()
            with lock:
                batches = dict(pending)
                pending.clear()
            for name, changes in batches.items():
                ctl = controllers[name]
                batch = [('nb', c) for c in changes]
                if name not in plugged:
                    plugged.add(name)
                    port_id = next(p for n, p, *_ in chassis if n == name)
                    batch.append(('iface', ('tap0', port_id, 1)))
                ctl.step(batch)
                now = time.time()
                for c in changes:
                    obj = c.obj
                    if c.table == 'logical_port' and obj is not None and \
                            (obj.name or '').startswith('probe') and \
                            name not in seen[obj.name]:
                        seen[obj.name][name] = now
                        with counted.get_lock():
                            counted.value += 1
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    # Everything read and computed once before the clock starts.
    deadline = time.monotonic() + 600
    while len(plugged) < len(chassis) and time.monotonic() < deadline:
        time.sleep(0.1)
    cpu0 = os.times()
    ready.set()
    stop.wait()
    cpu = os.times()
    worker.join(5)
    out.put({'seen': {k: dict(v) for k, v in seen.items()},
             'cpu_s': (cpu.user - cpu0.user) + (cpu.system - cpu0.system),
             'chassis': len(chassis)})
    for _, _, client, _, selection in chassis:
        selection.stop()
        client.stop()
        client.close()


def all_computed(outs_seen, probe, count):
    times = [t for seen in outs_seen for t in seen.get(probe, {}).values()]
    return times if len(times) == count else None


def run(ens, n, changes, rate, procs):
    writer = connect(ens.voter_hosts)
    nb = NbApi(writer, ROOT)
    net = nb.create('logical_switch', {'name': f'scale{n}'})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.0.0.0/12'})
    names = [f'sim{n}-{i}' for i in range(n)]
    nb.write_many([('create', 'chassis', {'id': c, 'ip': f'192.0.{i // 250}'
                                          f'.{i % 250 + 1}'})
                   for i, c in enumerate(names)])
    ports = [p.id for p in nb.write_many([
        ('create', 'logical_port', {'network_id': net.id,
                                    'binding_chassis': c})
        for c in names])]
    ctx = multiprocessing.get_context('spawn')
    out = ctx.Queue()
    stop = ctx.Event()
    counted = ctx.Value('i', 0)
    procs = max(1, min(procs, n))
    workers, events = [], []
    for k in range(procs):
        ready = ctx.Event()
        w = ctx.Process(target=_chassis_process, args=(
            ens.hosts, names[k::procs], ports[k::procs], ready, out, stop,
            counted))
        w.start()
        workers.append(w)
        events.append(ready)
    for ev in events:
        ev.wait(900)

    def computed_by_all(count, timeout):
        deadline = time.monotonic() + timeout
        while counted.value < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return counted.value >= count

    started = time.time()
    probes = []
    for i in range(changes):
        sent = time.monotonic()
        port = nb.create('logical_port', {'network_id': net.id,
                                          'name': f'probe{i}',
                                          'binding_chassis': names[0]})
        probes.append((port.name, time.time()))
        computed_by_all(n * (i + 1), 120)
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - sent)))
    # The leader dies; a change written once a new leader serves.
    leader = ens.wait_leader()
    killed = time.time()
    leader.kill()
    while True:
        try:
            port = nb.create('logical_port', {'network_id': net.id,
                                              'name': 'probe-after-kill',
                                              'binding_chassis': names[0]})
            break
        except Exception:
            time.sleep(0.05)
    written = time.time()
    computed_by_all(n * (changes + 1), 300)
    elapsed = time.time() - started
    stop.set()
    results = [out.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(60)
    seens = [r['seen'] for r in results]
    latencies, complete = [], 0
    for probe, at in probes:
        times = all_computed(seens, probe, n)
        if times is not None:
            complete += 1
            latencies.append(max(times) - at)
    after = all_computed(seens, 'probe-after-kill', n)
    cpu = sum(r['cpu_s'] for r in results)
    leader.start()
    ens.wait_leader()
    writer.delete(ROOT, recursive=True)
    writer.stop()
    writer.close()
    return {'chassis': n, 'changes': changes, 'complete': complete,
            'p50_ms': pct(latencies, 50) * 1000 if latencies else None,
            'p99_ms': pct(latencies, 99) * 1000 if latencies else None,
            'cpu_s_per_change': cpu / (changes + 1),
            'cpu_percent': cpu / elapsed * 100,
            'resync_after_kill_s': max(after) - killed if after else None,
            'after_write_s': max(after) - written if after else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--chassis', default='1,100,300',
                        help='comma-separated N to measure (1,000 needs '
                        'more than 2 cores: their initial syncs make the '
                        'sessions expire on this kind of machine)')
    parser.add_argument('--changes', type=int, default=20)
    parser.add_argument('--rate', type=float, default=2.0,
                        help='changes per second')
    parser.add_argument('--procs', type=int, default=4)
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    # kazoo's reconnect warnings after the leader kill are expected.
    logging.basicConfig(level=logging.ERROR)
    workdir = tempfile.mkdtemp(prefix='df-scale-')
    ens = ZkEnsemble(os.path.join(workdir, 'zk'), size=3, heap_mb=512)
    results = []
    try:
        ens.start()
        ens.wait_leader()
        base = None
        for n in (int(x) for x in args.chassis.split(',')):
            r = run(ens, n, args.changes, args.rate, args.procs)
            results.append(r)
            base = base or r
            fmt = (lambda v, unit='ms': '-' if v is None else
                   f'{v:.0f} {unit}' if unit == 'ms' else f'{v:.1f} {unit}')
            print(f'scale: {n:4d} chassis: change -> computed on all: p50 '
                  f'{fmt(r["p50_ms"])}, p99 {fmt(r["p99_ms"])} '
                  f'({r["complete"]}/{r["changes"]} complete); CPU '
                  f'{r["cpu_s_per_change"]:.2f} s per change '
                  f'({r["cpu_percent"]:.0f} % of one core); leader killed'
                  f' -> all resynced and computing in '
                  f'{fmt(r["resync_after_kill_s"], "s")} '
                  f'({fmt(r["after_write_s"], "s")} after the first write '
                  f'the new leader took). Baseline 1 chassis p99: '
                  f'{fmt(base["p99_ms"])}')
    finally:
        ens.stop()
    write_json(args.json, results)


if __name__ == '__main__':
    main()
