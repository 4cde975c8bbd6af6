#!/usr/bin/env python3
"""Load balancer benchmarks in the lab (root; real OVS, ZooKeeper, agents,
HAProxy): new TCP connections per second from one client through the
distributed VIP (members on both chassis), straight to the members (half
to each), and
through HAProxy running in a namespace on the client's chassis as the
central load balancer of the same members (the deployment Dragonflow had
before); and the time from a member's server dying to no new connection
going to it, with a TCP health monitor (delay 1 s, timeout 1 s, 2 retries
down) against HAProxy's checks with the same parameters (inter 1 s, fall
2)."""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from benchlab import lab_session, network, vm, wait, write_json  # noqa: E402

BACKEND_PORT, VIP_PORT = 8080, 80

RATE = """
import socket, sys, time
ip, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
failed = 0
start = time.monotonic()
for _ in range(count):
    try:
        s = socket.create_connection((ip, port), timeout=2)
        s.recv(100)
        s.close()
    except OSError:
        failed += 1
print(time.monotonic() - start, failed)
"""

# Connections back to back for a while, each logged with its time
# (CLOCK_MONOTONIC, the same in every namespace) and who answered.
TIMELINE = """
import json, socket, sys, time
ip, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
out = []
end = time.monotonic() + seconds
while time.monotonic() < end:
    t = time.monotonic()
    try:
        s = socket.create_connection((ip, port), timeout=0.5)
        answer = s.recv(100).decode() or 'empty'
        s.close()
    except OSError:
        answer = 'failed'
    out.append((t, answer))
    time.sleep(0.02)
print(json.dumps(out))
"""

HAPROXY = """global
    maxconn 4096
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen vip
    bind 0.0.0.0:{port}
    balance roundrobin
{servers}
"""


def rate(client, ip, port, count):
    out = subprocess.run(['ip', 'netns', 'exec', client.ns, sys.executable,
                          '-c', RATE, ip, str(port), str(count)],
                         capture_output=True, text=True, check=True,
                         timeout=count * 3 + 30).stdout.split()
    elapsed, failed = float(out[0]), int(out[1])
    return (count - failed) / elapsed, failed


def down_window(client, ip, port, kill, seconds=12.0):
    """Seconds from kill() to the last connection not answered by the
    surviving member b1 (refused, reset, closed by a proxy that could not
    reach b2, or answered by b2)."""
    proc = subprocess.Popen(['ip', 'netns', 'exec', client.ns,
                             sys.executable, '-c', TIMELINE, ip, str(port),
                             str(seconds)], stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    killed_at = time.monotonic()
    kill()
    timeline = json.loads(proc.communicate(timeout=seconds + 30)[0])
    bad = [t for t, answer in timeline if t >= killed_at and answer != 'b1']
    tail = [a for t, a in timeline if t >= killed_at + seconds - 4]
    settled = bool(tail) and set(tail) == {'b1'}
    return (max(bad) - killed_at if bad else 0.0), settled


def bench(lab, nb, count):
    net, subnet = network(nb, 'lb', '10.140.0.0/24')
    client = vm(lab, nb, 'lbc', net, 'ch1')
    backends = {'b1': vm(lab, nb, 'lbb1', net, 'ch1'),
                'b2': vm(lab, nb, 'lbb2', net, 'ch2')}
    servers = {}

    def serve(name):
        servers[name] = backends[name].serve_named(name, BACKEND_PORT)
        lab.track(f'lb-{name}', servers[name].pid)

    def kill(name):
        servers[name].kill()
        servers[name].wait()
        lab.untrack(f'lb-{name}')
    for name in backends:
        serve(name)
    # HAProxy, the central load balancer, in a VM on the client's chassis.
    proxy = vm(lab, nb, 'lbhp', net, 'ch1')
    config = os.path.join(lab.dir, 'haproxy.cfg')
    with open(config, 'w') as f:
        f.write(HAPROXY.format(port=VIP_PORT, servers='\n'.join(
            f'    server {name} {machine.ip}:{BACKEND_PORT} check inter 1s '
            f'fall 2 rise 2' for name, machine in backends.items())))
    haproxy = subprocess.Popen(['ip', 'netns', 'exec', proxy.ns, 'haproxy',
                                '-f', config, '-db'],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    lab.track('lb-haproxy', haproxy.pid)
    lb = nb.create('loadbalancer', {'name': 'bench',
                                    'vip_subnet_id': subnet.id})
    pool = nb.create('pool', {'loadbalancer_id': lb.id, 'protocol': 'TCP',
                              'lb_algorithm': 'ROUND_ROBIN'})
    nb.create('listener', {'loadbalancer_id': lb.id, 'protocol': 'TCP',
                           'protocol_port': VIP_PORT,
                           'default_pool_id': pool.id})
    for machine in backends.values():
        nb.create('member', {'pool_id': pool.id, 'address': machine.ip,
                             'protocol_port': BACKEND_PORT})
    vip = lb.vip_address
    targets = {'vip': (vip, VIP_PORT),
               'direct': (backends['b2'].ip, BACKEND_PORT),
               'haproxy': (proxy.ip, VIP_PORT)}
    for name, (ip, port) in targets.items():
        if not wait(lambda: set(client.connections(ip, port, 6)) <=
                    {'b1', 'b2'}, 60, 0.5):
            raise SystemExit(f'{name} ({ip}:{port}) does not answer')
    rates = {name: rate(client, ip, port, count)
             for name, (ip, port) in targets.items() if name != 'direct'}
    # Straight to the members, half to each (one local, one remote), as
    # the VIP spreads them.
    halves = [rate(client, machine.ip, BACKEND_PORT, count // 2)
              for machine in backends.values()]
    rates['direct'] = (2 / sum(1 / r for r, _ in halves),
                       sum(f for _, f in halves))
    print(f'new TCP connections/s from one client (sequential, {count} '
          f'each): VIP {rates["vip"][0]:.0f}, straight to the members '
          f'{rates["direct"][0]:.0f}, HAProxy {rates["haproxy"][0]:.0f}; '
          f'VIP/direct {rates["vip"][0] / rates["direct"][0]:.2f}, '
          f'VIP/HAProxy {rates["vip"][0] / rates["haproxy"][0]:.2f} '
          f'(failed: {rates["vip"][1]}, {rates["direct"][1]}, '
          f'{rates["haproxy"][1]})')
    # A member dies: our health monitor against HAProxy's checks.
    hm = nb.create('healthmonitor', {
        'pool_id': pool.id, 'type': 'TCP', 'delay': 1, 'timeout': 1,
        'max_retries': 2, 'max_retries_down': 2})
    wait(lambda: {m.operating_status for m in
                  nb.list('member', pool_id=pool.id)} == {'ONLINE'}, 30)
    ours, ours_settled = down_window(client, vip, VIP_PORT,
                                     lambda: kill('b2'))
    serve('b2')
    wait(lambda: {m.operating_status for m in
                  nb.list('member', pool_id=pool.id)} == {'ONLINE'}, 30)
    wait(lambda: 'b2' in client.connections(proxy.ip, VIP_PORT, 6), 30, 0.5)
    theirs, theirs_settled = down_window(client, proxy.ip, VIP_PORT,
                                         lambda: kill('b2'))
    print(f'member down -> no new connection to it: VIP {ours:.1f} s '
          f'(monitor window delay x retries_down + timeout = '
          f'{hm.delay * hm.max_retries_down + hm.timeout} s), HAProxy '
          f'{theirs:.1f} s (inter 1 s, fall 2); ratio '
          f'{ours / theirs if theirs else float("inf"):.2f}'
          + ('' if ours_settled and theirs_settled else
             ' (NOT settled within the run)'))
    return {'vip_connections_per_s': rates['vip'][0],
            'direct_connections_per_s': rates['direct'][0],
            'haproxy_connections_per_s': rates['haproxy'][0],
            'member_down_vip_s': ours, 'member_down_haproxy_s': theirs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=500,
                        help='connections per rate measurement')
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    with lab_session('dfb', '172.30.64.0/24', ['ch1', 'ch2']) as (lab, nb):
        results = bench(lab, nb, args.count)
    write_json(args.json, results)


if __name__ == '__main__':
    main()
