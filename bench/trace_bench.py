#!/usr/bin/env python3
"""dfctl trace and dfctl check in the lab (root; real OVS, ZooKeeper,
agents). Prints figures and ratios against a baseline measured in the
same run:

``dfctl trace --physical`` across 2 chassis through a router (a hop on
each chassis; --ports ports in a security group of --rules rules, so the
agents annotate against a real flow table), wall time as an operator
sees it (a dfctl process, target < 1 s), the agents' own answer times,
against the logical-only trace of the same packet and a plain
``dfctl port list`` (process start + ZooKeeper session: the floor); and
``dfctl check`` on that lab (every agent counts its flows against
``ovs-ofctl dump-flows``).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlab import lab_session, pct, wait, write_json  # noqa: E402
from lab_harness import netlab  # noqa: E402


def build(lab, nb, ports, rules):
    group = nb.create('security_group', {'name': 'bench-web'})
    nb.create('security_group_rule', {'security_group_id': group.id,
                                      'direction': 'egress'})
    for i in range(rules):
        nb.create('security_group_rule', {
            'security_group_id': group.id, 'direction': 'ingress',
            'protocol': 'tcp', 'port_range_min': 1000 + i,
            'port_range_max': 1000 + i})
    router = nb.create('logical_router', {'name': 'bench-r'})
    placed = {'ch1': [], 'ch2': []}
    for n, chassis in enumerate(('ch1', 'ch2')):
        net = nb.create('logical_switch', {'name': f'bench-{chassis}'})
        subnet = nb.create('subnet', {'network_id': net.id,
                                      'cidr': f'10.{120 + n}.0.0/22'})
        nb.create('logical_router_port', {'router_id': router.id,
                                          'subnet_id': subnet.id})
        items = [{'network_id': net.id, 'name': f'{chassis}-p{i}',
                  'security_groups': [group.id]}
                 for i in range(ports // 2)]
        created = [nb.create('logical_port', item) for item in items]
        placed[chassis] = created
        lab.chassis[chassis].plug_internal(
            [(f'b{n}p{i}', p.id) for i, p in enumerate(created)])
    for chassis, created in placed.items():
        ids = {p.id for p in created}
        if not wait(lambda: all(p.binding_chassis == chassis for p in
                                nb.list('logical_port') if p.id in ids),
                    120, interval=1):
            raise RuntimeError(f'{chassis}: ports not bound in 120 s')
    time.sleep(3)       # flows settle
    return placed['ch1'][0], placed['ch2'][-1]


def timed(lab, args, samples):
    env = dict(os.environ, OS_DF__REMOTE_DB_HOSTS=lab.zk_address,
               PYTHONPATH=netlab.AGENT_DIR)
    times, last = [], None
    for _ in range(samples):
        start = time.monotonic()
        proc = subprocess.run([sys.executable, '-m', 'dragonflow.cli.dfctl',
                               *args], env=env, capture_output=True,
                              text=True, timeout=120)
        times.append(time.monotonic() - start)
        if proc.returncode not in (0, 1):
            raise RuntimeError(proc.stderr)
        last = proc.stdout
    return times, last


def figures(times):
    return {'median': round(statistics.median(times), 3),
            'p90': round(pct(times, 90), 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--samples', type=int, default=10)
    parser.add_argument('--ports', type=int, default=200)
    parser.add_argument('--rules', type=int, default=40)
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    with lab_session('dft', '172.30.61.0/24', ['ch1', 'ch2']) as (lab, nb):
        src, dst = build(lab, nb, args.ports, args.rules)
        flows = {name: ch.flow_count() for name, ch in lab.chassis.items()}
        ask = ['trace', '--from', src.id, '--to', dst.id, '--protocol',
               'tcp', '--dport', '1000']
        floor, _ = timed(lab, ['port', 'list'], args.samples)
        logical, _ = timed(lab, ask, args.samples)
        physical, out = timed(lab, ask + ['--physical', '--json'],
                              args.samples)
        checks, checked = timed(lab, ['check', '--json'], args.samples)
        answer = json.loads(out)
        agents = [hop['result']['seconds'] for hop in answer['physical']
                  if 'result' in hop]
        results = {'ports': args.ports, 'rules': args.rules, 'flows': flows,
                   'hops': len(answer['physical']),
                   'delivered': answer['delivered'],
                   'port_list': figures(floor),
                   'logical': figures(logical),
                   'physical': figures(physical),
                   'agent_answer_s': agents,
                   'check': figures(checks),
                   'check_findings': len(json.loads(checked)['findings'])}
        results['physical_over_logical'] = round(
            results['physical']['median'] / results['logical']['median'], 2)
        results['physical_minus_floor_s'] = round(
            results['physical']['median'] - results['port_list']['median'],
            3)
    print(json.dumps(results, indent=2))
    write_json(args.json, results)


if __name__ == '__main__':
    main()
