#!/usr/bin/env python3
"""Tap as a service in the lab (root; real OVS, ZooKeeper, agents,
iperf3): TCP throughput between two VMs on two chassis without a tap and
with a BOTH tap flow from the sender to a tap service on the receiver's
chassis (every packet copied across the tunnel too), as a ratio in the
same run; and the flows one tap flow adds on each chassis."""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from benchlab import lab_session, network, vm, wait, write_json  # noqa: E402


def throughput(client, server_ip, seconds):
    out = subprocess.run(
        ['ip', 'netns', 'exec', client.ns, 'iperf3', '-J', '-c', server_ip,
         '-t', str(seconds)], capture_output=True, text=True, check=True,
        timeout=seconds + 60).stdout
    return json.loads(out)['end']['sum_received']['bits_per_second']


def bench(lab, nb, seconds, rounds):
    net, _ = network(nb, 'tap', '10.142.0.0/24')
    sender = vm(lab, nb, 'tps', net, 'ch1')
    receiver = vm(lab, nb, 'tpr', net, 'ch2')
    port = nb.create('logical_port', {'network_id': net.id, 'name': 'tpm',
                                      'port_security_enabled': False})
    monitor = lab.add_vm('tpm', lab.chassis['ch2'], port)
    server = subprocess.Popen(['ip', 'netns', 'exec', receiver.ns, 'iperf3',
                               '-s'], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    lab.track('tap-iperf3', server.pid)
    assert wait(lambda: sender.ping(receiver.ip, count=1, timeout=1), 30)

    def tap_flows(chassis):
        return sum(any(mark in line for mark in (
            'reg10=', 'resubmit(,120)', 'tun_id=0xffffff'))
            for line in chassis.flows())
    plain, tapped = [], []
    service = nb.create('tap_service', {'port_id': monitor.port_id})
    flow = None
    try:
        for _ in range(rounds):
            plain.append(throughput(sender, receiver.ip, seconds))
            flow = nb.create('tap_flow', {'tap_service_id': service.id,
                                          'source_port': sender.port.id})
            assert wait(lambda: any(
                'resubmit(,120)' in line
                for line in lab.chassis['ch1'].flows()), 30), 'copies'
            added = {name: tap_flows(ch)
                     for name, ch in lab.chassis.items()}
            tapped.append(throughput(sender, receiver.ip, seconds))
            nb.delete('tap_flow', flow.id)
            flow = None
            assert wait(lambda: not any(
                'resubmit(,120)' in line
                for line in lab.chassis['ch1'].flows()), 30), 'no copies'
    finally:
        if flow is not None:
            nb.delete('tap_flow', flow.id)
        server.kill()
        server.wait()
        lab.untrack('tap-iperf3')
    plain_bps, tapped_bps = sorted(plain)[len(plain) // 2], \
        sorted(tapped)[len(tapped) // 2]
    results = {'seconds': seconds, 'rounds': rounds,
               'plain_gbps': plain_bps / 1e9, 'tapped_gbps': tapped_bps / 1e9,
               'ratio': tapped_bps / plain_bps,
               'flows_added_per_chassis': added}
    print(f'tap: TCP {results["plain_gbps"]:.2f} Gbit/s without a tap, '
          f'{results["tapped_gbps"]:.2f} Gbit/s with a BOTH tap flow to a '
          f'service on the receiver\'s chassis (ratio '
          f'{results["ratio"]:.2f}; medians of {rounds} rounds of '
          f'{seconds} s, alternating); one tap flow adds '
          + ', '.join(f'{n} flows on {c}' for c, n in sorted(added.items())))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=int, default=5)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    with lab_session('dft', '172.30.69.0/24', ['ch1', 'ch2']) as (lab, nb):
        results = bench(lab, nb, args.seconds, args.rounds)
    write_json(args.json, results)


if __name__ == '__main__':
    main()
