#!/usr/bin/env python3
"""Trunk benchmarks in the lab (root; real OVS, ZooKeeper, agents): flows
per trunk subport on the parent's chassis (against flows per plain port of
the same network, measured in the same run), and subport created -> first
ping through it (against a plain port created -> first ping)."""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from benchlab import (first_reply, lab_session, network, pct, vm,  # noqa: E402
                      wait, write_json)


def flow_count(chassis):
    return len(chassis.flows())


def bench(lab, nb, subports):
    ch1 = lab.chassis['ch1']
    parent_net, _ = network(nb, 'trunk-parent', '10.110.0.0/24')
    parent = nb.create('logical_port', {'network_id': parent_net.id})
    trunk = nb.create('trunk', {'port_id': parent.id})
    trunk_vm = lab.add_trunk_vm('tb', ch1, parent)
    nets = [network(nb, f'sub{i}', f'10.{111 + i}.0.0/24')[0]
            for i in range(subports)]
    peers = [vm(lab, nb, f'sp{i}', net, 'ch2') for i, net in enumerate(nets)]
    # Every subport network already has a port on ch1, so what is counted
    # is the subport's own flows, not its network's.
    for i, net in enumerate(nets):
        vm(lab, nb, f'warm{i}', net, 'ch1')
    wait(lambda: nb.get('logical_port', parent.id).binding_chassis == 'ch1')
    sub_flows, sub_ready = [], []
    for i, net in enumerate(nets):
        port = nb.create('logical_port', {'network_id': net.id})
        trunk_vm.add_subport(100 + i, port.macs[0], port.ips[0])
        wait(lambda: False, 0.5)
        before = flow_count(ch1)
        took = first_reply(trunk_vm, peers[i].ip, lambda: nb.create(
            'child_port_segmentation', {'trunk_id': trunk.id,
                                        'port_id': port.id,
                                        'segmentation_id': 100 + i}))
        wait(lambda: False, 0.5)
        sub_flows.append(flow_count(ch1) - before)
        sub_ready.append(took)
    # Baseline: plain ports of the first subport network on the same
    # chassis, plugged first and then created in NB (as the subports).
    plain_flows, plain_ready = [], []
    for i in range(subports):
        port_id, mac = f'plain-{i}', 'fa:16:3e:70:00:%02x' % i
        ip = f'10.111.0.{200 + i}'
        lab.add_vm(f'pl{i}', ch1, type('Port', (), {
            'id': port_id, 'macs': [mac], 'ips': [ip]}))
        wait(lambda: False, 0.5)
        before = flow_count(ch1)
        took = first_reply(lab.vms[f'pl{i}'], peers[0].ip, lambda: nb.create(
            'logical_port', {'id': port_id, 'network_id': nets[0].id,
                             'macs': [mac], 'ips': [ip]}))
        wait(lambda: False, 0.5)
        plain_flows.append(flow_count(ch1) - before)
        plain_ready.append(took)
    ok = [t for t in sub_ready if t is not None]
    base = [t for t in plain_ready if t is not None]
    print(f'trunk subports: {pct(sub_flows, 50)} flows per subport on the '
          f'parent\'s chassis (plain port of the same network: '
          f'{pct(plain_flows, 50)}; ratio '
          f'{pct(sub_flows, 50) / max(1, pct(plain_flows, 50)):.2f}); '
          f'subport create -> first ping through it p50 '
          f'{pct(ok, 50) * 1000:.0f} ms ({len(ok)}/{subports}); plain port '
          f'create -> first ping p50 {pct(base, 50) * 1000:.0f} ms')
    return {'flows_per_subport': pct(sub_flows, 50),
            'flows_per_plain_port': pct(plain_flows, 50),
            'subport_ready_p50_s': pct(ok, 50),
            'plain_ready_p50_s': pct(base, 50)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--subports', type=int, default=5)
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    with lab_session('dft', '172.30.61.0/24', ['ch1', 'ch2']) as (lab, nb):
        results = bench(lab, nb, args.subports)
    write_json(args.json, results)


if __name__ == '__main__':
    main()
