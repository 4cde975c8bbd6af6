#!/usr/bin/env python3
"""Containers on Dragonflow against podman's own bridge network, in the lab
(root; podman 4.3 with the CNI backend in chassis ch1's network namespace,
real agents), same run:

- ``podman run`` → the container's first ping answered (p50/p99 over
  ``--rounds``): on Dragonflow to a VM on the other chassis, on the CNI
  ``bridge`` network (host-local IPAM) to its gateway, each container
  removed before the next;
- ``--parallel`` containers started at once → all of them answer a ping
  from outside (Dragonflow: the VM on the other chassis; bridge: the
  chassis' namespace);
- the plugin alone, run as a runtime runs it: VERSION (start-up) and
  ADD/DEL of a container namespace (p50)."""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from benchlab import lab_session, network, pct, vm, write_json  # noqa: E402
from lab_harness.netlab import AGENT_DIR  # noqa: E402
from lab_harness.podman import Podman  # noqa: E402

BRIDGE_GATEWAY = '10.151.0.1'


def bridge_network(engine, chassis):
    """podman's default kind of network: the CNI bridge plugin."""
    config = {'cniVersion': '1.0.0', 'name': 'brbench', 'plugins': [{
        'type': 'bridge', 'bridge': 'cnibr0', 'isGateway': True,
        'ipMasq': False, 'ipam': {
            'type': 'host-local', 'ranges': [[{'subnet': '10.151.0.0/24'}]],
            'routes': [{'dst': '0.0.0.0/0'}]}}]}
    with open(os.path.join(engine.net_dir(chassis), 'brbench.conflist'),
              'w') as f:
        json.dump(config, f)


def first_ping(engine, chassis, network_name, target, name):
    start = time.monotonic()
    engine.run(chassis, name, network_name)
    ran = time.monotonic() - start
    while engine.exec(chassis, name, 'ping', '-c', '1', '-W', '1',
                      target).returncode:
        if time.monotonic() - start > 60:
            raise SystemExit(f'{name} on {network_name}: no ping answered '
                             'within 60 s')
    total = time.monotonic() - start
    engine.rm(chassis, name)
    return ran, total


def reachable_from(ns, ip):
    return subprocess.run(['ip', 'netns', 'exec', ns, 'ping', '-c', '1',
                           '-W', '1', ip], capture_output=True).returncode == 0


def parallel_start(engine, chassis, network_name, count, prober_ns, tag):
    names = [f'{tag}{i}' for i in range(count)]
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        list(pool.map(lambda n: engine.run(chassis, n, network_name), names))
    started = time.monotonic() - start
    pending = {engine.address(chassis, n, network_name) for n in names}
    while pending and time.monotonic() - start < 120:
        pending = {ip for ip in pending if not reachable_from(prober_ns, ip)}
    total = time.monotonic() - start
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: engine.rm(chassis, n), names))
    return started, total, len(pending)


def plugin_alone(lab, net, rounds):
    chassis = lab.chassis['ch1']
    config = json.dumps({'cniVersion': '1.0.0', 'name': 'x',
                         'type': 'dragonflow', 'network': net.id,
                         'config_file': os.path.join(chassis.dir,
                                                     'dragonflow.ini')})

    def run(command, container=None, ns=None):
        env = dict(os.environ, PYTHONPATH=AGENT_DIR, CNI_COMMAND=command,
                   CNI_IFNAME='eth0')
        if container:
            env.update(CNI_CONTAINERID=container,
                       CNI_NETNS=f'/var/run/netns/{ns}')
        start = time.monotonic()
        subprocess.run(['ip', 'netns', 'exec', chassis.ns, sys.executable,
                        '-m', 'dragonflow.cni.plugin'], input=config.encode(),
                       capture_output=True, env=env, check=True)
        return time.monotonic() - start
    version = [run('VERSION') for _ in range(rounds)]
    add, delete = [], []
    for _ in range(rounds):
        container = uuid.uuid4().hex
        ns = f'{lab.prefix}-b{container[:8]}'
        subprocess.run(['ip', 'netns', 'add', ns], check=True)
        add.append(run('ADD', container, ns))
        delete.append(run('DEL', container, ns))
        subprocess.run(['ip', 'netns', 'del', ns], check=True)
    return version, add, delete


def bench(lab, nb, rounds, parallel):
    net, _ = network(nb, 'pods', '10.150.0.0/24')
    target = vm(lab, nb, 'cbv', net, 'ch2')
    engine = Podman(os.path.join(lab.dir, 'podman'), AGENT_DIR)
    engine.image()
    ch1 = lab.chassis['ch1']
    try:
        engine.network(ch1, 'dfbench', network=net.id)
        bridge_network(engine, ch1)
        ours, theirs = [], []
        for i in range(rounds):
            ours.append(first_ping(engine, ch1, 'dfbench', target.ip,
                                   f'd{i}'))
            theirs.append(first_ping(engine, ch1, 'brbench', BRIDGE_GATEWAY,
                                     f'b{i}'))
        par_ours = parallel_start(engine, ch1, 'dfbench', parallel,
                                  target.ns, 'pd')
        par_theirs = parallel_start(engine, ch1, 'brbench', parallel,
                                    ch1.ns, 'pb')
    finally:
        engine.close()
    version, add, delete = plugin_alone(lab, net, min(rounds, 20))
    ping_ours = [t for _, t in ours]
    ping_theirs = [t for _, t in theirs]
    results = {
        'rounds': rounds, 'parallel': parallel,
        'first_ping_p50_s': pct(ping_ours, 50),
        'first_ping_p99_s': pct(ping_ours, 99),
        'bridge_first_ping_p50_s': pct(ping_theirs, 50),
        'bridge_first_ping_p99_s': pct(ping_theirs, 99),
        'first_ping_ratio_p50': pct(ping_ours, 50) / pct(ping_theirs, 50),
        'podman_run_p50_s': pct([r for r, _ in ours], 50),
        'bridge_podman_run_p50_s': pct([r for r, _ in theirs], 50),
        'parallel_all_reachable_s': par_ours[1],
        'parallel_unreachable': par_ours[2],
        'bridge_parallel_all_reachable_s': par_theirs[1],
        'parallel_ratio': par_ours[1] / par_theirs[1],
        'plugin_version_p50_ms': pct(version, 50) * 1e3,
        'plugin_add_p50_ms': pct(add, 50) * 1e3,
        'plugin_del_p50_ms': pct(delete, 50) * 1e3,
    }
    print(f'containers: podman run → first ping p50 '
          f'{results["first_ping_p50_s"]:.2f} s, p99 '
          f'{results["first_ping_p99_s"]:.2f} s on Dragonflow (to a VM on '
          f'another chassis) vs {results["bridge_first_ping_p50_s"]:.2f} / '
          f'{results["bridge_first_ping_p99_s"]:.2f} s on the CNI bridge '
          f'(ratio {results["first_ping_ratio_p50"]:.2f}; podman run alone '
          f'{results["podman_run_p50_s"]:.2f} vs '
          f'{results["bridge_podman_run_p50_s"]:.2f} s); {parallel} '
          f'containers at once all reachable in {par_ours[1]:.1f} s vs '
          f'{par_theirs[1]:.1f} s (ratio {results["parallel_ratio"]:.2f}, '
          f'{par_ours[2]} unreachable); plugin alone: VERSION '
          f'{results["plugin_version_p50_ms"]:.0f} ms, ADD '
          f'{results["plugin_add_p50_ms"]:.0f} ms (until bound with its '
          f'flows), DEL {results["plugin_del_p50_ms"]:.0f} ms')
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=50)
    parser.add_argument('--parallel', type=int, default=50)
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    with lab_session('dfk', '172.30.72.0/24', ['ch1', 'ch2']) as (lab, nb):
        results = bench(lab, nb, args.rounds, args.parallel)
    write_json(args.json, results)


if __name__ == '__main__':
    main()
