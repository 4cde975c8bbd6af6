#!/usr/bin/env python3
"""SFC benchmarks in the lab (root; real OVS, ZooKeeper, agents): flows per
chain hop (added on all chassis by a 3-hop chain, per hop) and setup time
of a 3-hop chain across 3 chassis (port_chain created -> a new TCP
connection passes all three functions), against a plain port created ->
first ping in the same run."""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from benchlab import (first_reply, lab_session, network, pct, vm,  # noqa: E402
                      wait, write_json)

def total_flows(lab):
    return sum(len(ch.flows()) for ch in lab.chassis.values())


def bench(lab, nb, samples):
    net, _ = network(nb, 'sfc', '10.130.0.0/24')
    client = vm(lab, nb, 'sc', net, 'ch1')
    server = vm(lab, nb, 'ss', net, 'ch3')
    functions = []
    for i, chassis in enumerate(('ch1', 'ch2', 'ch3')):
        port = nb.create('logical_port', {'network_id': net.id,
                                          'port_security_enabled': False})
        machine = lab.add_vm(f'sf{i}', lab.chassis[chassis], port)
        machine.enable_forwarding()
        machine.port = port
        functions.append(machine)
    lab.track('sfc-server', server.serve_tcp(8080).pid)
    wait(lambda: client.connect_tcp(server.ip, 8080) == client.ip, 30)
    groups = [nb.create('port_pair_group', {'port_pairs': [nb.create(
        'port_pair', {'ingress_port': f.port.id,
                      'egress_port': f.port.id}).id]}) for f in functions]
    classifier = nb.create('flow_classifier', {
        'logical_source_port': client.port.id, 'protocol': 'tcp',
        'destination_port_range_min': 8080,
        'destination_port_range_max': 8080})
    setups, per_hop = [], []
    for _ in range(samples):
        wait(lambda: False, 0.5)
        flows_before = total_flows(lab)
        counts = [f.forwarded() for f in functions]
        start = time.monotonic()
        chain = nb.create('port_chain', {
            'port_pair_groups': [g.id for g in groups],
            'flow_classifiers': [classifier.id]})
        wait(lambda: client.connect_tcp(server.ip, 8080, timeout=0.5) ==
             client.ip and all(f.forwarded() > c
                               for f, c in zip(functions, counts)), 30, 0.01)
        setups.append(time.monotonic() - start)
        wait(lambda: False, 0.5)
        per_hop.append((total_flows(lab) - flows_before) / len(groups))
        nb.delete('port_chain', chain.id)
        wait(lambda: False, 1.0)
    # Baseline: a plain port created (VM plugged first) -> first ping.
    base = []
    for i in range(samples):
        port_id, mac = f'base-{i}', 'fa:16:3e:71:00:%02x' % i
        ip = f'10.130.0.{200 + i}'
        lab.add_vm(f'b{i}', lab.chassis['ch2'], type('Port', (), {
            'id': port_id, 'macs': [mac], 'ips': [ip]}))
        base.append(first_reply(client, ip, lambda: nb.create(
            'logical_port', {'id': port_id, 'network_id': net.id,
                             'macs': [mac], 'ips': [ip]})))
    base = [t for t in base if t is not None]
    print(f'SFC: {pct(per_hop, 50):.1f} flows per chain hop (3-hop chain, '
          f'3 chassis, one classifier); chain created -> traffic through '
          f'all 3 functions p50 {pct(setups, 50) * 1000:.0f} ms, max '
          f'{max(setups) * 1000:.0f} ms; plain port create -> first ping '
          f'p50 {pct(base, 50) * 1000:.0f} ms; ratio '
          f'{pct(setups, 50) / pct(base, 50):.2f}')
    return {'flows_per_hop': pct(per_hop, 50),
            'chain_setup_p50_s': pct(setups, 50),
            'port_ready_p50_s': pct(base, 50)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--samples', type=int, default=5)
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    with lab_session('dfs', '172.30.63.0/24', ['ch1', 'ch2', 'ch3']) as (lab, nb):
        results = bench(lab, nb, args.samples)
    write_json(args.json, results)


if __name__ == '__main__':
    main()
