#!/usr/bin/env python3
"""Load balancer work at scale, in the real controller without a switch
(no root): one chassis (every app, pipeline checked, a counter as the
switch) with N ports on one network, all local, and a load balancer whose
pool has M of them as members (two listeners, TCP and UDP, a health
monitor). It prints the LB flows per listener, the cost of one member
change (a weight) and of one member's port change, against one plain
port change (not a member) in the same run, and the cost per port of
bringing the N ports up with the load balancer there against without it
(a port change must not pay for the load balancer)."""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from benchlab import write_json  # noqa: E402
from incremental_bench import controller, event, obj, port  # noqa: E402


def world():
    return [obj('chassis', id='ch1', ip='192.0.2.1'),
            obj('logical_switch', id='net', unique_key=5, segmentation_id=5),
            obj('subnet', id='sub', network_id='net', cidr='10.0.0.0/16',
                gateway_ip='10.0.0.1'),
            obj('security_group', id='sg', unique_key=1),
            obj('security_group_rule', id='e', security_group_id='sg',
                direction='egress')]


def lb_objects(members):
    out = [obj('logical_port', id='vip', network_id='net', unique_key=99,
               ips=['10.0.200.1'], macs=['fa:16:3e:ff:00:01'],
               port_security_enabled=False, device_owner='Octavia'),
           obj('loadbalancer', id='lb', vip_subnet_id='sub',
               vip_network_id='net', vip_address='10.0.200.1',
               vip_port_id='vip')]
    for proto, port_number, key in (('TCP', 80, 1), ('UDP', 53, 2)):
        out += [obj('pool', id=f'pool-{proto}', loadbalancer_id='lb',
                    protocol=proto, lb_algorithm='ROUND_ROBIN'),
                obj('listener', id=f'l-{proto}', loadbalancer_id='lb',
                    protocol=proto, protocol_port=port_number,
                    default_pool_id=f'pool-{proto}', unique_key=key)]
        out += [obj('member', id=f'm-{proto}-{i}', pool_id=f'pool-{proto}',
                    address=port(i).ips[0], protocol_port=8080,
                    subnet_id='sub') for i in range(members)]
    out.append(obj('healthmonitor', id='hm', pool_id='pool-TCP', type='TCP',
                   delay=5, timeout=2, max_retries=2))
    return out


def bring_up(ctl, ports):
    """Ports created and plugged one at a time; seconds per port."""
    start = time.perf_counter()
    for i in range(ports):
        new = port(i)
        ctl.step([event('create', new)])
        ctl.step([('iface', (f'tap{i}', new.id, 10 + i))])
        ctl.nb.patches = []
    return (time.perf_counter() - start) / ports


def timed_update(ctl, table, obj_id, repeat=20, **changes):
    """Median seconds of one update of an object (applied and undone)."""
    times = []
    for n in range(repeat):
        old = ctl.state.get(table, obj_id)
        data = old.to_dict()
        data.update({k: (v if n % 2 == 0 else data[k])
                     for k, v in changes.items()})
        new = obj(table, **data)
        began = time.perf_counter()
        ctl.step([event('update', new, old)])
        times.append(time.perf_counter() - began)
    return sorted(times)[len(times) // 2]


def run(ports, members):
    bare = controller()
    bare.step([event('create', o) for o in world()])
    without = bring_up(bare, ports)
    ctl = controller()
    ctl.step([event('create', o) for o in world()])
    ctl.step([event('create', o) for o in lb_objects(members)])
    with_lb = bring_up(ctl, ports)
    if ctl.refused:
        raise SystemExit(f'{ctl.refused} flows refused')
    lb_flows = {k: len(ctl.installed.flows('lb', k))
                for app, k in list(ctl.installed._by_key) if app == 'lb'}
    member = timed_update(ctl, 'member', 'm-TCP-0', weight=2)
    member_port = timed_update(ctl, 'logical_port', port(0).id,
                               name='renamed')
    plain = timed_update(ctl, 'logical_port', port(ports - 1).id,
                         name='renamed')
    return {'ports': ports, 'members': members,
            'lb_flows_per_listener': max(lb_flows.values()),
            'member_change_ms': member * 1e3,
            'member_port_change_ms': member_port * 1e3,
            'plain_port_change_ms': plain * 1e3,
            'port_up_with_lb_ms': with_lb * 1e3,
            'port_up_without_lb_ms': without * 1e3}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=1000)
    parser.add_argument('--members', type=int, default=200)
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    r = run(args.ports, min(args.members, args.ports - 1))
    ratio = r['port_up_with_lb_ms'] / r['port_up_without_lb_ms']
    print(f'lb at scale: {r["ports"]} local ports, {r["members"]} members '
          f'in each of 2 pools: {r["lb_flows_per_listener"]} LB flows per '
          f'listener; one member change {r["member_change_ms"]:.1f} ms, '
          f'a member\'s port change {r["member_port_change_ms"]:.1f} ms, a '
          f'plain port change {r["plain_port_change_ms"]:.1f} ms (ratio '
          f'{r["member_change_ms"] / r["plain_port_change_ms"]:.1f}); '
          f'bringing a port up {r["port_up_with_lb_ms"]:.1f} ms with the '
          f'load balancer, {r["port_up_without_lb_ms"]:.1f} ms without '
          f'(ratio {ratio:.2f})')
    write_json(args.json, r)


if __name__ == '__main__':
    main()
