#!/usr/bin/env python3
"""Work per change at scale, in the real controller without a switch.

The controller of one chassis (every app of the full set, the declared
pipeline checked) takes ports one at a time the way a chassis sees them
arrive: the NB port create, the local interface, then its own binding
coming back from NB; a counter stands in for the switch. Scenarios (one
network, all ports local, all in one security group):

- ``rules``: the group has 40 ingress TCP rules and egress allow-all (no
  remote-group rules) -- the issue's "1,000-port group" row;
- ``default``: Neutron's default group: ingress from members of the group
  itself (IPv4 and IPv6, remote-group rules) and egress allow-all.

For each it prints the time to bring up all ports, the cost per port of
the first and last 10 % (a flat ratio means the work per change does not
grow with the network), the flows at the end, and the baseline measured
in the same run: what recomputing the whole network for one change costs
at that size (what the controller did per change before flows were keyed
by port), against the average cost of one change at the end.
"""
import argparse
import os
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'agent'))

from dragonflow.controller import service  # noqa: E402
from dragonflow.model import base  # noqa: E402
from dragonflow.nb.changes import Change  # noqa: E402
from benchlab import write_json  # noqa: E402


def obj(table, **data):
    return base.model_for(table).from_dict(data)


class CountingSwitch:
    """The switch, reduced to counting flow changes."""

    def __init__(self):
        self.changes = 0

    def commit(self, deletes=(), adds=(), messages=()):
        count = len(deletes) + len(adds)
        self.changes += count
        return count


class RecordingNb:
    """Bindings the controller writes, handed back as NB changes."""

    def __init__(self):
        self.patches = []

    def patch(self, table, obj_id, values):
        self.patches.append((table, obj_id, values))

    def write_many(self, writes):
        for _, table, obj_id, values in writes:
            self.patch(table, obj_id, values)


def event(action, new, old=None):
    return ('nb', Change(None, None, new.table, new.id, action, old,
                         None if action == 'delete' else new))


def group_rules(scenario):
    rules = [dict(id=f'e-{v}', direction='egress', ethertype=v)
             for v in ('IPv4', 'IPv6')]
    if scenario == 'rules':
        rules += [dict(id=f'tcp-{i}', direction='ingress', protocol='tcp',
                       port_range_min=1000 + i, port_range_max=1000 + i)
                  for i in range(40)]
    else:
        rules += [dict(id=f'i-{v}', direction='ingress', ethertype=v,
                       remote_group_id='sg') for v in ('IPv4', 'IPv6')]
    return [obj('security_group_rule', security_group_id='sg', **r)
            for r in rules]


def controller():
    conf = types.SimpleNamespace(df=types.SimpleNamespace(
        apps_list=[a for a in service.df_apps.APP_MODULES
                   if a != 'l2_normal'], check_pipeline=True))
    ctl = service.LocalController(conf, RecordingNb(), None, 'ch1')
    ctl.writer = CountingSwitch()
    ctl.binding_writer.submit = lambda fn: fn()
    return ctl


def port(i):
    return obj('logical_port', id=f'p{i:05d}', network_id='net',
               unique_key=100 + i,
               ips=[f'10.0.{i // 250}.{i % 250 + 2}'],
               macs=['fa:16:3e:%02x:%02x:%02x' % (i >> 16, i >> 8 & 0xff,
                                                  i & 0xff)],
               security_groups=['sg'])


def run(scenario, ports):
    ctl = controller()
    world = [obj('chassis', id='ch1', ip='192.0.2.1'),
             obj('logical_switch', id='net', unique_key=5,
                 segmentation_id=5),
             obj('subnet', id='sub', network_id='net', cidr='10.0.0.0/16',
                 gateway_ip='10.0.0.1'),
             obj('security_group', id='sg', unique_key=1)]
    ctl.step([event('create', o) for o in world + group_rules(scenario)])
    per_port = []
    start = time.perf_counter()
    for i in range(ports):
        began = time.perf_counter()
        new = port(i)
        ctl.step([event('create', new)])
        ctl.step([('iface', (f'tap{i}', new.id, 10 + i))])
        bound, ctl.nb.patches = ctl.nb.patches, []
        ctl.step([event('update', obj(t, **dict(
            ctl.state.get(t, i_).to_dict(), **v)), ctl.state.get(t, i_))
            for t, i_, v in bound])
        per_port.append(time.perf_counter() - began)
    total = time.perf_counter() - start
    flows = sum(len(ctl.installed.flows(a, k))
                for a, k in list(ctl.installed._by_key))
    tenth = max(1, ports // 10)
    first = sum(per_port[:tenth]) / tenth
    last = sum(per_port[-tenth:]) / tenth
    # The baseline: one change recomputing the whole network, as before.
    began = time.perf_counter()
    list(ctl.desired({'net'}, ctl.programmed_ports, ctl.programmed_keys))
    whole = time.perf_counter() - began
    if ctl.refused:
        raise SystemExit(f'{ctl.refused} flows refused')
    return {'scenario': scenario, 'ports': ports, 'total_s': total,
            'first_ms': first * 1e3, 'last_ms': last * 1e3,
            'growth': last / first, 'flows': flows,
            'whole_network_ms': whole * 1e3,
            'incremental_ratio': (last / 3) / whole}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=1000)
    parser.add_argument('--scenario', action='append',
                        choices=('rules', 'default'))
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    results = []
    for scenario in args.scenario or ('rules', 'default'):
        r = run(scenario, args.ports)
        results.append(r)
        print(f'incremental ({scenario}): {r["ports"]} ports one at a time '
              f'(create, plug, binding) in {r["total_s"]:.1f} s; per port '
              f'{r["first_ms"]:.1f} ms (first 10 %) -> {r["last_ms"]:.1f} '
              f'ms (last 10 %), growth x{r["growth"]:.1f}; {r["flows"]} '
              f'flows. Baseline, same run: recomputing the whole network '
              f'for one change takes {r["whole_network_ms"]:.0f} ms; one '
              f'change now costs {r["incremental_ratio"] * 100:.1f} % of '
              f'that')
    write_json(args.json, results)


if __name__ == '__main__':
    main()
