#!/usr/bin/env python3
"""What the pipeline contract costs the controller (no root, no switch).

A chassis with P local ports (and as many remote ones) on N networks
behind one router, every port in a security group with a few rules: every
app of the full set computes its flows, and the controller's FlowTable
takes them (a) with the declared-pipeline check (``[df] check_pipeline``,
the default) and (b) without it, in the same run. Ownership (one owner per
flow) is checked in both: it is what keeps a shared flow on the switch.
Prints the times, the flow count and the ratio; the cost that matters is
(a) - (b) against the computation itself, since both run on every change.
"""
import argparse
import os
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'agent'))

from dragonflow.controller import apps as df_apps  # noqa: E402
from dragonflow.controller import flows as fl  # noqa: E402
from dragonflow.controller import pipeline as pl  # noqa: E402
from dragonflow.controller.state import LocalState  # noqa: E402
from dragonflow.model import base  # noqa: E402
from benchlab import write_json  # noqa: E402


def obj(table, **data):
    return base.model_for(table).from_dict(data)


def world(ports, networks):
    state = LocalState('ch1')
    state.put(obj('chassis', id='ch1', ip='192.0.2.1'))
    state.put(obj('chassis', id='ch2', ip='192.0.2.2'))
    state.put(obj('logical_router', id='r', unique_key=1))
    state.put(obj('security_group', id='sg', unique_key=1))
    for i, rule in enumerate(({'direction': 'egress'},
                              {'direction': 'ingress', 'protocol': 'tcp',
                               'port_range_min': 22, 'port_range_max': 22},
                              {'direction': 'ingress', 'protocol': 'icmp'},
                              {'direction': 'ingress', 'protocol': 'tcp',
                               'port_range_min': 8000,
                               'port_range_max': 8099})):
        state.put(obj('security_group_rule', id=f'rule{i}',
                      security_group_id='sg', **rule))
    per_net = max(1, ports // networks)
    key = 100
    for n in range(networks):
        net_id = f'net{n}'
        state.put(obj('logical_switch', id=net_id, unique_key=n + 10,
                      segmentation_id=n + 10))
        cidr = f'10.{n // 256}.{n % 256}.0/24'
        prefix = cidr.rsplit('.', 1)[0]
        state.put(obj('subnet', id=f'sub{n}', network_id=net_id, cidr=cidr,
                      gateway_ip=f'{prefix}.1'))
        state.put(obj('logical_router_port', id=f'rp{n}', router_id='r',
                      subnet_id=f'sub{n}', network_id=net_id,
                      ip=f'{prefix}.1', mac='fa:16:3e:ff:%02x:%02x' % (
                          n // 256, n % 256), unique_key=n + 1000))
        for j in range(2 * per_net):
            key += 1
            local = j % 2 == 0
            port_id = f'p{key}'
            state.put(obj('logical_port', id=port_id, network_id=net_id,
                          unique_key=key, ips=[f'{prefix}.{j + 10}'],
                          macs=['fa:16:3e:%02x:%02x:%02x' % (
                              key >> 16 & 0xff, key >> 8 & 0xff, key & 0xff)],
                          security_groups=['sg'],
                          binding_chassis=None if local else 'ch2'))
            if local:
                state.ofports[port_id] = key
    state.tunnel_ofports.update({'geneve': 1, 'vxlan': 2})
    return state


def changes(apps, state):
    return list(df_apps.global_changes(apps, state)) + list(df_apps.changes(
        apps, state,
        {n: state.network(n) for n in state.programmed_networks()},
        {p: state.get('logical_port', p)
         for p in sorted(state.port_ids(state.programmed_networks()))}))


def timed(fn, repeat):
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=1000)
    parser.add_argument('--networks', type=int, default=20)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    state = world(args.ports, args.networks)
    ctl = types.SimpleNamespace(state=state, programmed=set(),
                                post=lambda *a: None)
    apps = df_apps.load([n for n in df_apps.APP_MODULES
                         if n != 'l2_normal'], ctl)
    compute, batch = timed(lambda: changes(apps, state), args.repeat)
    count = sum(len(c.flows) for c in batch)

    def install(check):
        table = fl.FlowTable(check=check)
        return table.update(batch).raise_refused()
    checked, _ = timed(lambda: install(pl.check), args.repeat)
    unchecked, _ = timed(lambda: install(None), args.repeat)
    print(f'pipeline check: {args.ports} local ports on {args.networks} '
          f'networks, {count} flows: apps compute them in {compute:.3f} s; '
          f'flow table takes them in {checked:.3f} s checked, '
          f'{unchecked:.3f} s unchecked; the check costs '
          f'{(checked - unchecked) / count * 1e6:.2f} us per flow, '
          f'{(checked - unchecked) / (compute + unchecked) * 100:.1f} % of '
          f'computing and taking them unchecked')
    write_json(args.json, {'ports': args.ports, 'flows': count,
                           'compute_s': compute, 'checked_s': checked,
                           'unchecked_s': unchecked})


if __name__ == '__main__':
    main()
