#!/usr/bin/env python3
"""L3 and security benchmarks in the lab (root; real OVS, ZooKeeper,
agents, BIRD). Prints figures and ratios against baselines measured in the
same run:

1. routed ping-ready: router interface added -> first routed reply across
   2 chassis, vs. the L2 baseline port created -> first reply;
2. a security group with 1,000 rules: NB write rate, then group attached
   to a port -> every rule flow installed (count, time), and one more rule
   -> its flow installed;
3. TCP connection rate through conntrack (server port with a security
   group) vs. the same pair without a group;
4. BGP: 1,000 floating IPs -> every /32 on BIRD, vs. one floating IP.
"""
import argparse
import concurrent.futures
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlab import (first_reply, lab_session, network, pct, vm,  # noqa: E402
                      wait, write_json)
from lab_harness import netlab  # noqa: E402
from lab_harness.bgplab import BgpLab  # noqa: E402

CONNECT_LOOP = """
import socket, sys, time
n, ok, start = int(sys.argv[3]), 0, time.monotonic()
for _ in range(n):
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)
        c.recv(100)
        c.close()
        ok += 1
    except OSError:
        pass
print(ok, time.monotonic() - start)
"""


# --- 1 ----------------------------------------------------------------------
def bench_routed_ready(lab, nb, samples):
    red, red_sub = network(nb, 'red', '10.101.0.0/24')
    blue, blue_sub = network(nb, 'blue', '10.102.0.0/24')
    router = nb.create('logical_router', {'name': 'bench-r'})
    nb.create('logical_router_port', {'router_id': router.id,
                                      'subnet_id': red_sub.id})
    a = vm(lab, nb, 'ra', red, 'ch1', '10.101.0.1')
    b = vm(lab, nb, 'rb', blue, 'ch2', '10.102.0.1')
    routed, l2 = [], []
    for i in range(samples):
        holder = {}

        def add():
            holder['rport'] = nb.create('logical_router_port', {
                'router_id': router.id, 'subnet_id': blue_sub.id})
        routed.append(first_reply(a, b.ip, add))
        nb.delete('logical_router_port', holder['rport'].id)
        wait(lambda: not a.ping(b.ip, count=1, timeout=1), 10)
        # Baseline: an L2 path appearing (port created, VM already plugged).
        port_id = f'l2-{i}-{int(time.time())}'
        mac = 'fa:16:3e:65:00:%02x' % i
        ip = f'10.101.0.{200 + i}'
        holder['vm'] = lab.add_vm(f'l2b{i}', lab.chassis['ch2'], type(
            'Port', (), {'id': port_id, 'macs': [mac], 'ips': [ip]}))
        l2.append(first_reply(a, ip, lambda: nb.create('logical_port', {
            'id': port_id, 'network_id': red.id, 'macs': [mac],
            'ips': [ip]})))
        holder['vm'].unplug()
        holder['vm'].destroy()
        lab.vms.pop(f'l2b{i}', None)
        nb.delete('logical_port', port_id)
    print('  samples (s): routed', [None if t is None else round(t, 2) for t in routed], 'L2', [None if t is None else round(t, 2) for t in l2])
    ok = [t for t in routed if t is not None]
    base = [t for t in l2 if t is not None]
    print(f'routed ping-ready after router-interface add (2 chassis): '
          f'p50 {pct(ok, 50) * 1000:.0f} ms, max {max(ok) * 1000:.0f} ms '
          f'({len(ok)}/{samples}); L2 baseline (port create): p50 '
          f'{pct(base, 50) * 1000:.0f} ms; ratio '
          f'{pct(ok, 50) / pct(base, 50):.2f}')
    return {'routed_p50_s': pct(ok, 50), 'routed_max_s': max(ok),
            'l2_p50_s': pct(base, 50)}


# --- 2 and 3 ----------------------------------------------------------------
def sg_flow_count(chassis, key):
    """Ingress rule flows serving the port: its own, and the plain rules'
    service clauses (shared by the groups' ports: no port key)."""
    out = chassis.ofctl('dump-flows', 'br-int', 'table=110', '--no-stats')
    return sum(1 for line in out.splitlines()
               if f'reg7=0x{key:x}' in line or 'priority=45,' in line)


def bench_sg_rules(lab, nb, rules):
    net, _ = network(nb, 'sgnet', '10.103.0.0/24')
    target = vm(lab, nb, 'sgt', net, 'ch1')
    group = nb.create('security_group', {'name': 'big'})
    start = time.monotonic()
    for i in range(rules):
        nb.create('security_group_rule', {
            'security_group_id': group.id, 'direction': 'ingress',
            'protocol': 'tcp', 'port_range_min': 10000 + i,
            'port_range_max': 10000 + i,
            'remote_ip_prefix': f'10.{i // 250}.{i % 250}.0/24'})
    write_s = time.monotonic() - start
    chassis = lab.chassis['ch1']
    key = target.port.unique_key
    start = time.monotonic()
    nb.patch('logical_port', target.port.id, {'security_groups': [group.id]})
    wait(lambda: sg_flow_count(chassis, key) >= rules, 120, 0.1)
    attach_s = time.monotonic() - start
    flows = sg_flow_count(chassis, key)
    start = time.monotonic()
    nb.create('security_group_rule', {
        'security_group_id': group.id, 'direction': 'ingress',
        'protocol': 'udp', 'port_range_min': 53, 'port_range_max': 53})
    wait(lambda: sg_flow_count(chassis, key) > flows, 30, 0.02)
    one_s = time.monotonic() - start
    print(f'security group with {rules} rules: NB writes {rules / write_s:.0f}'
          f' rules/s; attached to a port -> {flows} rule flows installed in '
          f'{attach_s:.2f} s; one more rule -> its flow in '
          f'{one_s * 1000:.0f} ms')
    return {'rules': rules, 'nb_rules_per_s': rules / write_s,
            'attach_s': attach_s, 'flows': flows, 'one_rule_s': one_s}


def connection_rate(client, server_ip, port, n):
    out = client.run(sys.executable, '-c', CONNECT_LOOP, server_ip, str(port),
                     str(n), timeout=300).split()
    ok, took = int(out[0]), float(out[1])
    return ok / took, ok


def bench_conn_rate(lab, nb, n):
    net, _ = network(nb, 'connnet', '10.104.0.0/24')
    group = nb.create('security_group', {'name': 'web'})
    for direction, extra in (('egress', {}), ('ingress', {
            'protocol': 'tcp', 'port_range_min': 8080,
            'port_range_max': 8080})):
        nb.create('security_group_rule', dict(
            security_group_id=group.id, direction=direction, **extra))
    client = vm(lab, nb, 'cc', net, 'ch2')
    plain = vm(lab, nb, 'cplain', net, 'ch1')
    guarded = vm(lab, nb, 'cguard', net, 'ch1')
    nb.patch('logical_port', guarded.port.id, {'security_groups': [group.id]})
    servers = [plain.serve_tcp(8080), guarded.serve_tcp(8080)]
    try:
        wait(lambda: client.connect_tcp(plain.ip, 8080) is not None, 30)
        wait(lambda: client.connect_tcp(guarded.ip, 8080) is not None, 30)
        base, base_ok = connection_rate(client, plain.ip, 8080, n)
        sg, sg_ok = connection_rate(client, guarded.ip, 8080, n)
        base2, _ = connection_rate(client, plain.ip, 8080, n)
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
    base = (base + base2) / 2
    print(f'TCP connections across chassis: through conntrack (security '
          f'group) {sg:.0f}/s ({sg_ok}/{n}), no group {base:.0f}/s '
          f'({base_ok}/{n}); ratio {sg / base:.2f}')
    return {'sg_conn_per_s': sg, 'plain_conn_per_s': base,
            'ratio': sg / base}


# --- 4 ----------------------------------------------------------------------
def bench_bgp(lab, nb, fips):
    upstream = lab.add_external('bup')
    upstream.add_address(f'{netlab.EXTERNAL_GATEWAY}/24')
    bgp = BgpLab(lab, upstream).start()
    ext = nb.create('logical_switch', {'name': 'bgp-public', 'external': True,
                                       'network_type': 'flat',
                                       'physical_network': 'nowhere'})
    nb.create('subnet', {'network_id': ext.id, 'cidr': '172.24.0.0/16',
                         'gateway_ip': '172.24.0.1'})
    tenant, _ = network(nb, 'bgp-tenant', '10.105.0.0/16')
    bgp.peer_objects(nb, [ext.id])
    try:
        if not wait(bgp.established, 60, 0.2):
            raise RuntimeError(f'no BGP session; see {bgp.log}')

        def on_bird():
            out = bgp.birdc('show', 'route', 'count')
            return int(out.split(' of ')[0].split()[-1]) \
                if ' of ' in out else 0

        ports = [nb.create('logical_port', {'network_id': tenant.id,
                                            'binding_chassis': 'ch1'})
                 for _ in range(fips)]
        start = time.monotonic()
        nb.create('floating_ip', {'floating_network_id': ext.id,
                                  'port_id': ports[0].id})
        wait(lambda: on_bird() >= 1, 30, 0.01)
        single = time.monotonic() - start
        # Addresses given (no allocation contention), four writers, as a
        # deployment tool creating many FIPs would.
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: nb.create('floating_ip', {
                'floating_network_id': ext.id, 'port_id': ports[i].id,
                'floating_ip_address': f'172.24.{10 + i // 250}.'
                                       f'{1 + i % 250}'}),
                range(1, fips)))
        written = time.monotonic() - start
        wait(lambda: on_bird() >= fips, 120, 0.05)
        total = time.monotonic() - start
        count = on_bird()
    finally:
        bgp.stop()
        upstream.destroy()
    print(f'BGP: {fips} floating IPs created in {written:.2f} s (NB writes) '
          f'-> {count} /32s on BIRD {total:.2f} s after the first write, '
          f'{total - written:.2f} s after the last; one FIP alone '
          f'{single * 1000:.0f} ms')
    return {'fips': fips, 'on_bird': count, 'total_s': total,
            'after_last_write_s': total - written, 'single_s': single}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--samples', type=int, default=5)
    parser.add_argument('--rules', type=int, default=1000)
    parser.add_argument('--connections', type=int, default=300)
    parser.add_argument('--fips', type=int, default=1000)
    parser.add_argument('--only', choices=['routed', 'sg', 'conn', 'bgp'],
                        help='run one benchmark')
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    results = {}
    with lab_session('dfe', '172.30.60.0/24', ['ch1', 'ch2']) as (lab, nb):
        want = (lambda name: args.only in (None, name))
        if want('routed'):
            results['routed_ready'] = bench_routed_ready(lab, nb,
                                                         args.samples)
        if want('sg'):
            results['sg_rules'] = bench_sg_rules(lab, nb, args.rules)
        if want('conn'):
            results['conn_rate'] = bench_conn_rate(lab, nb, args.connections)
        if want('bgp'):
            results['bgp'] = bench_bgp(lab, nb, args.fips)
    write_json(args.json, results)


if __name__ == '__main__':
    main()
