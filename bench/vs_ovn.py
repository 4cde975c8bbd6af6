#!/usr/bin/env python3
"""Our agent and OVN 23.03 side by side (root; real OVS, ZooKeeper, OVN).

The same lab twice, one after the other in one run (two chassis, one OVS
each, the userspace datapath, the same underlay): first with our agents
and ZooKeeper, then with OVN from Debian (installed by this bench when
missing, its system services never started; NB/SB ovsdb-servers and
ovn-northd on the central host, ovn-controller on each chassis, Geneve).
The scenarios are ``scale_bench.py``'s, given the same inputs through each
side's own northbound: the same network, ports, and a security group of 40
ingress TCP rules + egress allow-all (for OVN, what Neutron's driver makes
of it: a port group with allow-related ACLs and default drops);
``--rules-from-group``: the ingress rules admit the group's own members
only (remote-group rules; for OVN, the port group's address set);
``--address-pairs N``: each port of the group has N allowed address pairs
(for OVN, N more addresses of the port).

Prints each side's raw figures as it goes, then a table: figure, OVN,
ours, ratio (ours / OVN) and the issue's target for the ratio."""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'agent'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests'))

from benchlab import write_json  # noqa: E402
from scale_bench import add_world_options, run  # noqa: E402
from sides import ensure_ovn  # noqa: E402

DEFAULT = ('batch', 'cycles', 'first_ping', 'group', 'idle', 'cold',
           'restart')

# (label, scenario, figure, target ratio ours/OVN or None)
ROWS = (
    ('group: plug -> flows settled (s)', 'group', 'seconds', 0.5),
    ('group: controller CPU (s)', 'group', 'agent_cpu_s', 1.0),
    ('group: flows', 'group', 'flows', None),
    ('cold start: start -> flows back (s)', 'cold', 'seconds', 1.0),
    ('restart x3 under ping -i 0.01: lost', 'restart', 'lost', None),
    ('  same ping, nothing changing: lost', 'restart', 'quiet_lost', None),
    ('restart: slowest settle (s)', 'restart', 'settle_max_s', None),
    ('batch of 200 on 2 chassis, median (s)', 'batch', 'seconds', 1.0),
    ('  first batch on the fresh lab (s)', 'batch', 'cold_s', None),
    ('first ping p50 (s)', 'first_ping', 'p50_s', 0.8),
    ('  static neighbours, 1 ms steps (s)', 'first_ping', 'p50_static_s',
     None),
    ('idle RSS, no port yet (MB)', 'idle_empty', 'rss_mb', None),
    ('idle RSS, group flows in place (MB)', 'idle', 'rss_mb', None),
    ('idle CPU, group flows in place (%)', 'idle', 'cpu_percent', None),
    ('RSS growth over 20 cycles of 200 (MB)', 'cycles', 'growth_mb', None),
)


def figure(results, scenario, name):
    values = results.get(scenario) or {}
    if name == 'settle_max_s' and values.get('settle_s'):
        return max(values['settle_s'])
    if name == 'growth_mb' and values.get('rss_mb'):
        # After the first cycle: what the first one allocates (caches,
        # pools) is not a leak.
        return values['rss_mb'][-1] - values['rss_mb'][1]
    return values.get(name)


def table(ours, ovn):
    lines = [f'{"figure":<40} {"OVN":>9} {"ours":>9} {"ratio":>7} '
             f'{"target":>7}']
    for label, scenario, name, target in ROWS:
        a, b = figure(ovn, scenario, name), figure(ours, scenario, name)
        if a is None and b is None:
            continue
        ratio = (f'{b / a:.2f}' if a not in (None, 0) and b is not None
                 else '-')
        lines.append(
            f'{label:<40} {fmt(a):>9} {fmt(b):>9} {ratio:>7} '
            f'{"<= " + str(target) if target else "":>7}')
    return '\n'.join(lines)


def fmt(value):
    if value is None:
        return '-'
    if isinstance(value, int):
        return str(value)
    if value < 0.1:
        return f'{value:.3f}'       # first pings: to the millisecond
    return f'{value:.2f}' if value < 100 else f'{value:.0f}'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=1000,
                        help='ports in the security-group scenario')
    parser.add_argument('--only', action='append', choices=DEFAULT,
                        help='run this scenario only (repeatable)')
    parser.add_argument('--json', help='also write the figures here')
    add_world_options(parser)
    args = parser.parse_args()
    scenarios = args.only or DEFAULT
    ensure_ovn()
    world = dict(from_group=args.rules_from_group, pairs=args.address_pairs)
    ours = run('dragonflow', scenarios, args.ports, prefix='dfv',
               underlay='172.30.61.0/24', **world)
    ovn = run('ovn', scenarios, args.ports, prefix='dfv',
              underlay='172.30.61.0/24', **world)
    print(f'\nside by side ({args.ports} ports in the group scenario):')
    print(table(ours, ovn))
    write_json(args.json, {'dragonflow': ours, 'ovn': ovn})


if __name__ == '__main__':
    main()
