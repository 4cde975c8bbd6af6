#!/usr/bin/env python3
"""Multicast membership at scale, in the real controller without a switch
(no root): the controller of one chassis (every app, the pipeline
checked, a counter as the switch) with ``--ports`` local ports on one
snooping network and ``--chassis`` other chassis, takes ``--groups``
groups' membership records one at a time as NB changes (each group
joined by 5 local ports and by ``--spread`` other chassis), then one
member joining and leaving a group.

Printed: the cost of one record change at the start and at the end (a
flat ratio: the work per change does not grow with the number of groups,
members or ports), flows per group, and the baseline measured in the
same run: recomputing every group's flows for one change."""
import argparse
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from benchlab import write_json  # noqa: E402
from incremental_bench import controller, event, obj, port  # noqa: E402
from dragonflow.model import multicast as mcm  # noqa: E402


def record(chassis, group, ports):
    return obj(mcm.TABLE, id=mcm.record_id(chassis, 'net', group),
               network_id='net', chassis=chassis, address=group,
               ports=ports)


def run(ports, chassis, groups, spread):
    ctl = controller()
    others = [f'ch{i}' for i in range(2, chassis + 2)]
    world = [obj('chassis', id='ch1', ip='192.0.2.1')] + [
        obj('chassis', id=c, ip=f'192.0.{2 + i // 250}.{i % 250 + 2}')
        for i, c in enumerate(others)] + [
        obj('logical_switch', id='net', unique_key=5, segmentation_id=5,
            multicast_snooping=True),
        obj('subnet', id='sub', network_id='net', cidr='10.0.0.0/16',
            gateway_ip='10.0.0.1'),
        obj('security_group', id='sg', unique_key=1)]
    ctl.step([event('create', o) for o in world])
    local = [port(i) for i in range(ports)]
    ctl.step([event('create', p) for p in local])
    ctl.step([('iface', (f'tap{i}', p.id, 10 + i))
              for i, p in enumerate(local)])
    ctl.step([event('update', obj('logical_port', **dict(
        p.to_dict(), binding_chassis='ch1')), p) for p in local])
    ctl.nb.patches = []
    rng = random.Random(7)
    per_change = []
    start = time.perf_counter()
    for g in range(groups):
        group = f'239.{g // 250}.{g % 250}.1'
        changes = [record('ch1', group,
                          sorted(p.id for p in rng.sample(local, 5)))]
        changes += [record(c, group, [f'remote-{c}-{g}'])
                    for c in rng.sample(others, spread)]
        for new in changes:
            began = time.perf_counter()
            ctl.step([event('create', new)])
            per_change.append(time.perf_counter() - began)
    total = time.perf_counter() - start
    # One more member on this chassis, then it leaves.
    group = '239.0.0.1'
    before = ctl.state.get(mcm.TABLE, mcm.record_id('ch1', 'net', group))
    joined = record('ch1', group, sorted(before.ports + [local[-1].id]))
    began = time.perf_counter()
    ctl.step([event('update', joined, before)])
    ctl.step([event('update', before, joined)])
    join_leave = (time.perf_counter() - began) / 2
    keys = {k for k in ctl.programmed_keys if k[0] == 'multicast'}
    flows = sum(len(ctl.installed.flows('multicast', k)) for k in keys)
    began = time.perf_counter()
    list(ctl.desired(set(), set(), keys))
    everything = time.perf_counter() - began
    if ctl.refused:
        raise SystemExit(f'{ctl.refused} flows refused')
    tenth = max(1, len(per_change) // 10)
    first = sum(per_change[:tenth]) / tenth
    last = sum(per_change[-tenth:]) / tenth
    return {'ports': ports, 'chassis': chassis, 'groups': groups,
            'spread': spread, 'records': len(per_change), 'total_s': total,
            'first_ms': first * 1e3, 'last_ms': last * 1e3,
            'growth': last / first, 'join_leave_ms': join_leave * 1e3,
            'group_flows': flows, 'flows_per_group': flows / len(keys),
            'all_groups_ms': everything * 1e3,
            'incremental_ratio': join_leave / everything}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=1000)
    parser.add_argument('--chassis', type=int, default=200)
    parser.add_argument('--groups', type=int, default=500)
    parser.add_argument('--spread', type=int, default=20)
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    r = run(args.ports, args.chassis, args.groups, args.spread)
    print(f'multicast scale: {r["records"]} membership records ({r["groups"]} '
          f'groups, each on this chassis and {r["spread"]} of '
          f'{r["chassis"]} others; {r["ports"]} local ports) one at a time in '
          f'{r["total_s"]:.1f} s; per record {r["first_ms"]:.2f} ms (first '
          f'10 %) -> {r["last_ms"]:.2f} ms (last 10 %), growth '
          f'x{r["growth"]:.1f}; a local join or leave {r["join_leave_ms"]:.2f}'
          f' ms; {r["flows_per_group"]:.0f} flows per group. Baseline, same '
          f'run: recomputing every group takes {r["all_groups_ms"]:.0f} ms; '
          f'one change costs {r["incremental_ratio"] * 100:.2f} % of that')
    write_json(args.json, r)


if __name__ == '__main__':
    main()
