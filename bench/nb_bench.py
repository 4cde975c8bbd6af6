#!/usr/bin/env python3
"""NB benchmarks against a real ZooKeeper started for the run.

Prints figures and ratios against baselines measured in the same run (the
machine is shared and noisy: compare ratios, not absolute times):

1. write throughput of N ports through the NB API, sequential and with
   concurrent writers; baseline: raw kazoo creates of same-sized znodes.
   The bulk path (NbApi.write_many, as ``dfctl apply`` uses): N ports in
   few transactions; baseline: raw kazoo transactions of 1,000 creates.
2. change fan-out: latency commit -> delivery at 1, 10 and 100
   subscribers (p50/p99) and ZooKeeper reads per change per subscriber.
3. full resync of N ports / N/10 networks by a new subscriber; baseline:
   pipelined raw reads of the same znodes.
4. selective distribution: T topics (tenants) with ports; what a chassis
   with ports in one topic reads (the shared feed and that topic's) to sync
   and to follow writes spread over all topics; baseline: a subscriber of
   the global log, same run.
5. observers: a 3-voter ensemble with 2 observers; fan-out to 300
   subscribers on the voters, then on the observers (writes on the
   voters).

Targets (ARCHITECTURE/issue): fan-out p99 < 100 ms at 100 subscribers,
resync of 10,000 ports < 5 s.
"""
import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'agent'))
# The lab harness lives with the tests, not in the product.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests'))

from kazoo.exceptions import ConnectionClosedError, ConnectionLoss  # noqa: E402,E501
from lab_harness.zookeeper import ZkEnsemble, ZkServer  # noqa: E402
from dragonflow.nb.api import NbApi  # noqa: E402
from dragonflow.store import zk  # noqa: E402


def connect(hosts):
    client = zk.make_client(hosts, timeout=30)
    client.start(timeout=30)
    return client


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def make_networks(nb, count):
    nets = []
    for i in range(count):
        net = nb.create('logical_switch', {'name': f'net{i}'})
        nb.create('subnet', {'network_id': net.id,
                             'cidr': f'10.{i // 256}.{i % 256}.0/24'})
        nets.append(net.id)
    return nets


def bench_writes(hosts, ports, networks, writers):
    root = '/bench-writes'
    client = connect(hosts)
    nb = NbApi(client, root)
    nets = make_networks(nb, networks)

    # Baseline: raw creates of ~the same body size, one at a time.
    body = nb.get('logical_switch', nets[0]).to_json() * 3
    client.ensure_path('/bench-raw')
    n_raw = min(ports, 2000)
    t = time.perf_counter()
    for i in range(n_raw):
        client.create(f'/bench-raw/{i}', body)
    raw_rate = n_raw / (time.perf_counter() - t)
    client.delete('/bench-raw', recursive=True)

    seq_n = ports // 2
    t = time.perf_counter()
    for i in range(seq_n):
        nb.create('logical_port', {'network_id': nets[i % len(nets)],
                                   'name': f'p{i}'})
    seq_rate = seq_n / (time.perf_counter() - t)

    conc_n = ports - seq_n
    clients = [connect(hosts) for _ in range(writers)]
    apis = [NbApi(c, root) for c in clients]

    def work(api, offset):
        for i in range(offset, conc_n, writers):
            api.create('logical_port', {'network_id': nets[i % len(nets)],
                                        'name': f'c{i}'})
    threads = [threading.Thread(target=work, args=(api, k))
               for k, api in enumerate(apis)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    conc_rate = conc_n / (time.perf_counter() - t)
    for c in clients:
        c.stop()
        c.close()
    bulk_rate, raw_txn_rate = bench_bulk(hosts, ports, body)
    print(f'writes: raw kazoo create (baseline) {raw_rate:8.0f}/s')
    print(f'writes: NB port create, sequential  {seq_rate:8.0f}/s  '
          f'({seq_n} ports, ratio to raw {seq_rate / raw_rate:.2f})')
    print(f'writes: NB port create, {writers} writers  {conc_rate:8.0f}/s  '
          f'({conc_n} ports, ratio to raw {conc_rate / raw_rate:.2f})')
    print(f'writes: raw kazoo transactions of 1,000 creates (baseline) '
          f'{raw_txn_rate:8.0f}/s')
    print(f'writes: NB port create, bulk (write_many) {bulk_rate:8.0f}/s  '
          f'({ports} ports, ratio to raw transactions '
          f'{bulk_rate / raw_txn_rate:.2f}, to sequential '
          f'{bulk_rate / seq_rate:.1f}x)')
    client.stop()
    client.close()
    return {'raw_per_s': raw_rate, 'sequential_per_s': seq_rate,
            'concurrent_per_s': conc_rate, 'writers': writers,
            'bulk_per_s': bulk_rate, 'raw_transaction_per_s': raw_txn_rate}


def bench_bulk(hosts, ports, body):
    """Port creates through NbApi.write_many, in a tree of their own, and
    raw kazoo transactions of 1,000 creates of the same body size."""
    root = '/bench-bulk'
    client = connect(hosts)
    nb = NbApi(client, root)
    net = nb.create('logical_switch', {'name': 'bulk'})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.128.0.0/12'})
    t = time.perf_counter()
    nb.write_many([('create', 'logical_port',
                    {'network_id': net.id, 'name': f'b{i}'})
                   for i in range(ports)])
    bulk_rate = ports / (time.perf_counter() - t)
    client.ensure_path('/bench-raw-txn')
    t = time.perf_counter()
    for start in range(0, ports, 1000):
        txn = client.transaction()
        for i in range(start, min(ports, start + 1000)):
            txn.create(f'/bench-raw-txn/{i}', body)
        txn.commit()
    raw_txn_rate = ports / (time.perf_counter() - t)
    client.delete('/bench-raw-txn', recursive=True)
    client.delete(root, recursive=True)
    client.stop()
    client.close()
    return bulk_rate, raw_txn_rate


def bench_resync(hosts, expected_ports):
    """A new subscriber's full sync of the data bench_writes left."""
    root = '/bench-writes'
    client = connect(hosts)
    nb = NbApi(client, root)
    ids = nb.store.ids('logical_port')
    t = time.perf_counter()
    n = sum(1 for _ in nb.store.get_many_raw('logical_port', ids))
    raw = time.perf_counter() - t
    done = threading.Event()
    t = time.perf_counter()
    sub = nb.subscribe(lambda c: None, tables=['logical_switch', 'subnet',
                                               'logical_port'])
    sub.wait_synced(120)
    elapsed = time.perf_counter() - t
    done.set()
    ports = sum(1 for (table, _) in sub.objects if table == 'logical_port')
    sub.stop()
    assert ports == expected_ports == n, (ports, expected_ports, n)
    print(f'resync: raw pipelined get of {n} ports (baseline) {raw:6.2f} s')
    print(f'resync: subscriber full sync of {ports} ports + networks + '
          f'subnets {elapsed:6.2f} s (ratio to raw {elapsed / raw:.2f}; '
          f'target < 5 s)')
    client.delete(root, recursive=True)
    client.stop()
    client.close()
    return {'ports': ports, 'seconds': elapsed, 'raw_seconds': raw}


def bench_selective(hosts, topics, ports_per_topic, writes):
    root = '/bench-selective'
    client = connect(hosts)
    nb = NbApi(client, root)
    tables = ['logical_switch', 'subnet', 'logical_port']
    nets = []
    for t in range(topics):
        topic = f'tenant-{t}'
        net = nb.create('logical_switch', {'name': topic, 'topic': topic})
        nb.create('subnet', {'network_id': net.id, 'topic': topic,
                             'cidr': f'10.{t // 256}.{t % 256}.0/24'})
        for _ in range(ports_per_topic):
            nb.create('logical_port', {'network_id': net.id, 'topic': topic})
        nets.append((topic, net.id))
    out = {}
    for label, kwargs in (('global log', {}),
                          ('one topic', {'feed': 'tenant-0'})):
        t = time.perf_counter()
        subs = [nb.subscribe(lambda c: None, tables=tables, **kwargs)]
        if kwargs:
            subs.append(nb.subscribe(lambda c: None, tables=tables, feed=''))
        for sub in subs:
            sub.wait_synced(120)
        sync = time.perf_counter() - t
        time.sleep(0.5)
        reads = sum(s.reads for s in subs)
        delivered = sum(s.delivered for s in subs)
        for i in range(writes):
            topic, net_id = nets[i % len(nets)]
            nb.create('logical_port', {'network_id': net_id, 'topic': topic})
        time.sleep(2)
        out[label] = {
            'sync_seconds': sync, 'sync_objects': delivered,
            'follow_reads': sum(s.reads for s in subs) - reads,
            'follow_delivered': sum(s.delivered for s in subs) - delivered}
        for sub in subs:
            sub.stop()
    base, mine = out['global log'], out['one topic']
    print(f'selective: {topics} topics x {ports_per_topic} ports, then '
          f'{writes} port writes spread over all topics')
    for label, r in out.items():
        print(f'selective: {label:10s} sync {r["sync_objects"]:6d} objects '
              f'{r["sync_seconds"]:5.2f} s; follow: {r["follow_reads"]:5d} '
              f'ZooKeeper reads, {r["follow_delivered"]:4d} changes')
    print(f'selective: ratio one topic / global: sync objects '
          f'{mine["sync_objects"] / base["sync_objects"]:.3f}, follow reads '
          f'{mine["follow_reads"] / max(1, base["follow_reads"]):.3f}')
    client.delete(root, recursive=True)
    client.stop()
    client.close()
    return out


def _subscriber_process(hosts, root, count, changes, ready, out):
    """count subscribers (one ZooKeeper session each) in one process."""
    clients = [connect(hosts) for _ in range(count)]
    latencies = [[] for _ in range(count)]
    subs = []
    for k, client in enumerate(clients):
        def record(change, k=k):
            if change.position is not None and change.committed_at:
                latencies[k].append(time.time() - change.committed_at)
        subs.append(NbApi(client, root).subscribe(
            record, tables=['logical_switch'], name=f's{k}'))
    for s in subs:
        s.wait_synced(60)
    ready.set()
    deadline = time.monotonic() + 120
    while (min(len(x) for x in latencies) < changes and
           time.monotonic() < deadline):
        time.sleep(0.05)
    reads = sum(s.reads for s in subs)
    for s in subs:
        s.stop()
    for c in clients:
        c.stop()
        c.close()
    out.put({'latencies': [v for x in latencies for v in x], 'reads': reads,
             'subscribers': count})


def _raw_watch_process(hosts, path, count, changes, ready, out):
    """Baseline: count plain kazoo clients re-reading a node on each watch
    event (the least a watch-based fan-out can do: one read per change)."""
    clients = [connect(hosts) for _ in range(count)]
    latencies = [[] for _ in range(count)]

    def arm(k):
        def fired(event):
            try:
                data, _ = clients[k].get(path, watch=fired)
            except (ConnectionClosedError, ConnectionLoss):
                return          # the watch fired as the client closed
            if data:
                latencies[k].append(time.time() - float(data))
        clients[k].get(path, watch=fired)
    for k in range(count):
        arm(k)
    ready.set()
    deadline = time.monotonic() + 120
    while (min(len(x) for x in latencies) < changes * 0.9 and
           time.monotonic() < deadline):
        time.sleep(0.05)
    time.sleep(0.5)
    for c in clients:
        c.stop()
        c.close()
    out.put({'latencies': [v for x in latencies for v in x],
             'reads': sum(len(x) for x in latencies), 'subscribers': count})


def _spread(target, args, subscribers, procs):
    """Run target(*args, n, ..., ready, out) in processes; gather results."""
    ctx = multiprocessing.get_context('spawn')
    out = ctx.Queue()
    per = [subscribers // procs + (1 if i < subscribers % procs else 0)
           for i in range(procs)]
    per = [p for p in per if p]
    events = [ctx.Event() for _ in per]
    workers = [ctx.Process(target=target, args=(*args[:2], n, *args[2:], ev,
                                                out))
               for n, ev in zip(per, events)]
    for w in workers:
        w.start()
    for ev in events:
        ev.wait(120)
    return workers, out


def bench_raw_fanout(hosts, subscribers, changes, rate, procs):
    client = connect(hosts)
    path = f'/bench-raw-fanout-{subscribers}'
    client.ensure_path(path)
    workers, out = _spread(_raw_watch_process, (hosts, path, changes),
                           subscribers, procs)
    time.sleep(0.5)
    for _ in range(changes):
        client.set(path, repr(time.time()).encode())
        time.sleep(1.0 / rate)
    results = [out.get(timeout=180) for _ in workers]
    for w in workers:
        w.join(30)
    lat = [v for r in results for v in r['latencies']]
    client.delete(path)
    client.stop()
    client.close()
    return pct(lat, 50) * 1000, pct(lat, 99) * 1000


def bench_fanout(hosts, subscribers, changes, rate, procs, sub_hosts=None,
                 label=''):
    """NB subscribers' fan-out; sub_hosts: the servers subscribers connect
    to (default: hosts, where the writer writes)."""
    sub_hosts = sub_hosts or hosts
    root = f'/bench-fanout-{subscribers}'
    client = connect(hosts)
    nb = NbApi(client, root)
    raw50, raw99 = bench_raw_fanout(sub_hosts, subscribers, changes, rate,
                                    procs)
    workers, out = _spread(_subscriber_process, (sub_hosts, root, changes),
                           subscribers, procs)
    # Subscribers' initial sync reads are not part of the per-change cost.
    time.sleep(0.5)
    for i in range(changes):
        nb.create('logical_switch', {'name': f'f{i}'})
        time.sleep(1.0 / rate)
    results = [out.get(timeout=180) for _ in workers]
    for w in workers:
        w.join(30)
    lat = [v for r in results for v in r['latencies']]
    reads = sum(r['reads'] for r in results)
    # reads includes each subscriber's initial sync (2 + tables listing).
    per_change = reads / (subscribers * changes)
    p50, p99 = pct(lat, 50) * 1000, pct(lat, 99) * 1000
    print(f'fan-out{label}: {subscribers:3d} subscribers, {changes} changes '
          f'at {rate}/s: p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  '
          f'reads/change/subscriber {per_change:.2f}  '
          f'(deliveries {len(lat)}/{subscribers * changes})\n'
          f'         baseline raw watch+read: p50 {raw50:6.1f} ms  p99 '
          f'{raw99:6.1f} ms  (ratio p99 {p99 / raw99:.2f})')
    client.delete(root, recursive=True)
    client.stop()
    client.close()
    return {'subscribers': subscribers, 'p50_ms': p50, 'p99_ms': p99,
            'raw_p50_ms': raw50, 'raw_p99_ms': raw99,
            'reads_per_change_per_subscriber': per_change,
            'deliveries': len(lat)}


def bench_observers(workdir, subscribers, changes, rate, procs, observers=2):
    """Subscribers on the quorum's voters against subscribers spread over
    observers (non-voting members), same ensemble, same run: what
    observers take off the quorum. Writes go to the voters."""
    ens = ZkEnsemble(os.path.join(workdir, 'observed'), size=3,
                     observers=observers, heap_mb=256)
    try:
        ens.start()
        ens.wait_leader()
        voters = bench_fanout(ens.voter_hosts, subscribers, changes, rate,
                              procs, label=' (on voters)')
        on_observers = bench_fanout(
            ens.voter_hosts, subscribers, changes, rate, procs,
            sub_hosts=','.join(s.address for s in ens.observers),
            label=f' (on {observers} observers)')
    finally:
        ens.stop()
    print(f'observers: p99 with subscribers on {observers} observers / on '
          f'the 3 voters: {on_observers["p99_ms"] / voters["p99_ms"]:.2f} '
          '(one machine: the servers share its cores; the gain in a cloud '
          'is the quorum\'s load, which this does not show)')
    return {'voters': voters, 'observers': on_observers}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--ports', type=int, default=10000)
    parser.add_argument('--networks', type=int, default=1000)
    parser.add_argument('--writers', type=int, default=4)
    parser.add_argument('--changes', type=int, default=200)
    parser.add_argument('--rate', type=float, default=10.0,
                        help='changes per second in the fan-out test')
    parser.add_argument('--subscribers', default='1,10,100')
    parser.add_argument('--topics', type=int, default=100)
    parser.add_argument('--ports-per-topic', type=int, default=20)
    parser.add_argument('--topic-writes', type=int, default=1000)
    parser.add_argument('--observer-subscribers', type=int, default=300,
                        help='subscribers in the observers comparison '
                        '(0: skip it)')
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='df-bench-')
    server = ZkServer(os.path.join(workdir, 'zk'), heap_mb=512).start()
    results = {}
    try:
        server.wait_ready()
        hosts = server.address
        results['writes'] = bench_writes(hosts, args.ports, args.networks,
                                         args.writers)
        results['resync'] = bench_resync(hosts, args.ports)
        results['selective'] = bench_selective(
            hosts, args.topics, args.ports_per_topic, args.topic_writes)
        results['fanout'] = [
            bench_fanout(hosts, int(n), args.changes, args.rate,
                         procs=min(int(n), 4))
            for n in args.subscribers.split(',')]
    finally:
        server.kill()
    if args.observer_subscribers:
        results['observers'] = bench_observers(
            workdir, args.observer_subscribers, args.changes, args.rate,
            procs=4)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
