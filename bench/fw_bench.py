#!/usr/bin/env python3
"""Firewall (FWaaS) at scale and on the wire.

Scale, in the real controller without a switch (no root): one chassis
(every app, pipeline checked, a counter as the switch) with N ports in a
security group, and a firewall group applying a policy of R rules in both
directions to them: the firewall's flows and the time to apply the group;
then one rule inserted in the middle of the policy, with one group and
with G groups using the policy: flows changed and time (the target: the
changes follow the groups using the policy, not the rule count).

Wire (``--lab``, root: real OVS, ZooKeeper, agents): new TCP connections
per second from a client on one chassis to a server on another, with no
firewall and through an ingress policy of 100 rules whose allow rule is
the last (ratio, same run)."""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lb_scale_bench  # noqa: E402
from benchlab import write_json  # noqa: E402
from incremental_bench import controller, event, obj, port  # noqa: E402
from lb_bench import RATE  # noqa: E402


def world():
    return lb_scale_bench.world() + [
        obj('security_group_rule', id='i', security_group_id='sg',
            direction='ingress')]


def rules(count, prefix='r'):
    """A varied policy: single ports, ranges, source prefixes, UDP, ICMP;
    allows and denies."""
    out = []
    for i in range(count):
        kind = i % 4
        fields = dict(id=f'{prefix}{i:05d}', action=('allow', 'deny')[i % 2])
        if kind == 0:
            fields.update(protocol='tcp', destination_port=str(1000 + i))
        elif kind == 1:
            fields.update(protocol='udp', destination_port=str(2000 + i),
                          source_ip_address=f'10.{i % 200}.0.0/16')
        elif kind == 2:
            fields.update(protocol='tcp', destination_port=f'{3000 + i}:'
                          f'{3003 + i}')
        else:
            fields.update(protocol='icmp',
                          source_ip_address=f'192.168.{i % 250}.0/24')
        out.append(obj('firewall_rule', **fields))
    return out


def fw_flows(ctl):
    return sum(len(ctl.installed.flows('fwaas', k))
               for app, k in list(ctl.installed._by_key) if app == 'fwaas')


def timed(ctl, events):
    before = ctl.writer.changes
    began = time.perf_counter()
    ctl.step(events)
    return time.perf_counter() - began, ctl.writer.changes - before


def insert_middle(ctl, policy_id, rule_id):
    old = ctl.state.get('firewall_policy', policy_id)
    ids = list(old.firewall_rules)
    ids.insert(len(ids) // 2, rule_id)
    new = obj('firewall_policy', **dict(old.to_dict(), firewall_rules=ids))
    return timed(ctl, [event('update', new, old)])


def scale(ports, count, groups):
    ctl = controller()
    ctl.step([event('create', o) for o in world()])
    for i in range(ports):
        new = obj('logical_port', **dict(port(i).to_dict()))
        ctl.step([event('create', new)])
        ctl.step([('iface', (f'tap{i}', new.id, 10 + i))])
    ctl.step([event('create', r) for r in rules(count)])
    ctl.step([event('create', obj(
        'firewall_policy', id='pol',
        firewall_rules=[f'r{i:05d}' for i in range(count)]))])
    apply_s, apply_changes = timed(ctl, [event('create', obj(
        'firewall_group', id='g0', unique_key=1000,
        ports=[port(i).id for i in range(ports)],
        ingress_firewall_policy_id='pol', egress_firewall_policy_id='pol'))])
    flows = fw_flows(ctl)
    ctl.step([event('create', obj('firewall_rule', id='new1', protocol='tcp',
                                  destination_port='443', action='deny'))])
    one_s, one_changes = insert_middle(ctl, 'pol', 'new1')
    # More groups on the same policy (one port each, taken from g0).
    per = max(1, ports // groups)
    old = ctl.state.get('firewall_group', 'g0')
    keep = [p for p in old.ports][:ports - per * (groups - 1)]
    ctl.step([event('update', obj('firewall_group', **dict(
        old.to_dict(), ports=keep)), old)])
    for g in range(1, groups):
        members = [port(i).id for i in range(ports - per * g,
                                             ports - per * (g - 1))]
        ctl.step([event('create', obj(
            'firewall_group', id=f'g{g}', unique_key=1000 + g, ports=members,
            ingress_firewall_policy_id='pol',
            egress_firewall_policy_id='pol'))])
    ctl.step([event('create', obj('firewall_rule', id='new2', protocol='tcp',
                                  destination_port='444', action='deny'))])
    many_s, many_changes = insert_middle(ctl, 'pol', 'new2')
    if ctl.refused:
        raise SystemExit(f'{ctl.refused} flows refused')
    return {'ports': ports, 'rules': count, 'groups': groups,
            'fw_flows': flows, 'apply_group_s': apply_s,
            'apply_group_flow_changes': apply_changes,
            'insert_one_group_ms': one_s * 1e3,
            'insert_one_group_flow_changes': one_changes,
            'insert_groups_ms': many_s * 1e3,
            'insert_groups_flow_changes': many_changes}


def wire(count):
    from benchlab import lab_session, network, vm, wait
    with lab_session('dfw', '172.30.65.0/24', ['ch1', 'ch2']) as (lab, nb):
        net, _ = network(nb, 'fw', '10.141.0.0/24')
        client = vm(lab, nb, 'fwc', net, 'ch1')
        server = vm(lab, nb, 'fws', net, 'ch2')
        proc = server.serve_named('fws', 8080)
        lab.track('fw-server', proc.pid)

        def measure():
            out = subprocess.run(
                ['ip', 'netns', 'exec', client.ns, sys.executable, '-c',
                 RATE, server.ip, '8080', str(count)], capture_output=True,
                text=True, check=True, timeout=count * 3 + 60).stdout.split()
            return (count - int(out[1])) / float(out[0]), int(out[1])
        assert wait(lambda: client.connect_tcp(server.ip, 8080) == 'fws',
                    30), 'no connection before the firewall'
        plain = measure()
        made = [nb.create('firewall_rule', {
            'protocol': 'tcp', 'destination_port': str(10000 + i),
            'action': 'deny'}) for i in range(99)]
        made.append(nb.create('firewall_rule', {
            'protocol': 'tcp', 'destination_port': '8080',
            'action': 'allow'}))
        policy = nb.create('firewall_policy', {
            'firewall_rules': [r.id for r in made]})
        group = nb.create('firewall_group', {
            'ports': [server.port.id],
            'ingress_firewall_policy_id': policy.id})

        def rule_flows():
            return sum('reg8=' in line for line in
                       lab.chassis['ch2'].flows())
        assert wait(lambda: rule_flows() >= 100, 30), 'rules not in'
        assert client.connect_tcp(server.ip, 8080) == 'fws'
        filtered = measure()
        # A policy of 1,000 rules in the real switch, then one inserted
        # in its middle: from the NB write to the flows in br-int.
        big = nb.write_many(
            [('create', 'firewall_rule', {
                'protocol': 'tcp', 'destination_port': str(20000 + i),
                'action': 'deny'}) for i in range(999)] +
            [('create', 'firewall_rule', {
                'protocol': 'tcp', 'destination_port': '8080',
                'action': 'allow'})])
        ids = [r.id for r in big]
        big_policy = nb.create('firewall_policy', {'firewall_rules': ids})
        began = time.monotonic()
        nb.patch('firewall_group', group.id,
                 {'ingress_firewall_policy_id': big_policy.id})
        written = time.monotonic()
        assert wait(lambda: rule_flows() >= 1001, 60, 0.1), '1,000 rules'
        installed = (time.monotonic() - began, time.monotonic() - written)
        extra = nb.create('firewall_rule', {
            'protocol': 'tcp', 'destination_port': '443',
            'action': 'deny'})
        began = time.monotonic()
        nb.patch('firewall_policy', big_policy.id, {
            'firewall_rules': ids[:500] + [extra.id] + ids[500:]})
        written = time.monotonic()
        assert wait(lambda: rule_flows() >= 1002, 60, 0.05), 'insert'
        inserted = (time.monotonic() - began, time.monotonic() - written)
        assert client.connect_tcp(server.ip, 8080) == 'fws'
        proc.kill()
        proc.wait()
        lab.untrack('fw-server')
    return {'connections': count, 'no_firewall_per_s': plain[0],
            'switch_1000_rules_s': installed[0],
            'switch_1000_rules_after_nb_write_s': installed[1],
            'switch_insert_one_s': inserted[0],
            'switch_insert_one_after_nb_write_s': inserted[1],
            'no_firewall_failed': plain[1],
            'policy_100_rules_per_s': filtered[0],
            'policy_100_rules_failed': filtered[1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=50)
    parser.add_argument('--rules', type=int, default=1000)
    parser.add_argument('--groups', type=int, default=10)
    parser.add_argument('--lab', action='store_true',
                        help='also the wire benchmark (root)')
    parser.add_argument('--count', type=int, default=500,
                        help='connections per rate measurement (--lab)')
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    r = scale(args.ports, args.rules, args.groups)
    print(f'firewall at scale: {r["ports"]} local ports, a policy of '
          f'{r["rules"]} rules both ways: {r["fw_flows"]} firewall flows, '
          f'applied in {r["apply_group_s"]:.2f} s '
          f'({r["apply_group_flow_changes"]} flow changes); one rule '
          f'inserted in the middle: {r["insert_one_group_ms"]:.1f} ms and '
          f'{r["insert_one_group_flow_changes"]} flow changes with 1 group, '
          f'{r["insert_groups_ms"]:.1f} ms and '
          f'{r["insert_groups_flow_changes"]} flow changes with '
          f'{r["groups"]} groups on the policy')
    if args.lab:
        w = wire(args.count)
        r.update(w)
        ratio = w['policy_100_rules_per_s'] / w['no_firewall_per_s']
        print(f'firewall on the wire: {w["no_firewall_per_s"]:.0f} new TCP '
              f'connections/s without a firewall, '
              f'{w["policy_100_rules_per_s"]:.0f}/s through a 100-rule '
              f'policy (ratio {ratio:.2f}; '
              f'failed {w["no_firewall_failed"]} / '
              f'{w["policy_100_rules_failed"]}); a 1,000-rule policy '
              f'from the NB write to br-int in '
              f'{w["switch_1000_rules_s"]:.2f} s '
              f'({w["switch_1000_rules_after_nb_write_s"]:.2f} s after the '
              f'write returned), one rule inserted in its middle in '
              f'{w["switch_insert_one_s"]:.2f} s '
              f'({w["switch_insert_one_after_nb_write_s"]:.2f} s; flows '
              f'polled with ovs-ofctl every 0.05 s)')
    write_json(args.json, r)


if __name__ == '__main__':
    main()
