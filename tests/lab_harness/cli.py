"""The multi-chassis lab on this machine, and its demo (``make demo``).

    python3 -m lab_harness.cli demo
        build the lab (ZooKeeper, two chassis with OVS and
        df-local-controller), create two networks and four VMs with dfctl,
        let the VMs get their addresses by DHCP, ping across chassis, add a
        router and ping between the networks, give it a gateway on an
        external VLAN network whose upstream router runs BIRD: VMs leave by
        SNAT through their own chassis, a floating IP is reached from
        outside, BIRD learns the tenant prefixes and the FIP /32 from
        df-bgp; a load balancer VIP on blue balanced by each client's
        chassis over a member on each chassis; a firewall group on blue2
        drops ping (logged) until a rule inserted first allows it; IGMP
        snooping on blue: blue2 joins a group and gets blue1's stream,
        dfctl multicast list shows it; a security group without
        ssh on green2: dfctl trace --physical names the missing rule (and
        writes its HTML report to /var/tmp/dragonflow-demo-trace.html),
        then passes once it is added;
        dfctl check finds nothing wrong; print the flow count per chassis,
        tear down (--keep leaves it up)
    python3 -m lab_harness.cli status   what a kept lab runs
    python3 -m lab_harness.cli down     tear a kept lab down (by PID, name)

Needs root (network namespaces) and Open vSwitch, ZooKeeper, busybox.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from lab_harness import bgplab
from lab_harness import netlab
from lab_harness.multicast_hosts import Receiver, send

DEFAULT_DIR = '/var/tmp/dragonflow-lab'
REPORT = '/var/tmp/dragonflow-demo-trace.html'
PREFIX = 'dfd'
UNDERLAY = '172.30.100.0/24'


def _lab(directory):
    return netlab.NetLab(directory, prefix=PREFIX, underlay=UNDERLAY)


def _run_dfctl(lab, *args):
    env = dict(os.environ, OS_DF__REMOTE_DB_HOSTS=lab.zk_address,
               PYTHONPATH=netlab.AGENT_DIR)
    return subprocess.run([sys.executable, '-m', 'dragonflow.cli.dfctl',
                           *args], env=env, text=True, capture_output=True)


def _dfctl(lab, *args, show=True):
    proc = _run_dfctl(lab, *args)
    if show:
        print(f'$ dfctl {" ".join(args)}')
        print(proc.stdout if proc.returncode == 0 else proc.stderr)
    if proc.returncode:
        raise RuntimeError(f'dfctl {" ".join(args)}: {proc.stderr.strip()}')
    return proc.stdout


def _step(text):
    print(f'\n=== {text}', flush=True)


def demo(lab):
    _step('lab: ZooKeeper and two chassis (OVS userspace datapath + '
          'df-local-controller each)')
    lab.create().start_chassis(['ch1', 'ch2'])
    _step('NB: two networks (Geneve and VXLAN), a subnet each, four ports')
    _dfctl(lab, 'network', 'create', '--name', 'blue', '--network-type',
           'geneve')
    _dfctl(lab, 'network', 'create', '--name', 'green', '--network-type',
           'vxlan')
    _dfctl(lab, 'subnet', 'create', '--name', 'blue-v4', '--network-id',
           'blue', '--cidr', '10.1.0.0/24', '--dns-nameservers', '10.1.0.53',
           show=False)
    _dfctl(lab, 'subnet', 'create', '--name', 'green-v4', '--network-id',
           'green', '--cidr', '10.2.0.0/24', show=False)
    placement = {'blue1': ('blue', 'ch1'), 'blue2': ('blue', 'ch2'),
                 'green1': ('green', 'ch1'), 'green2': ('green', 'ch2')}
    ports = {}
    for vm, (network, _) in placement.items():
        ports[vm] = json.loads(_dfctl(lab, '--json', 'port', 'create',
                                      '--name', vm, '--network-id', network,
                                      show=False))
    print(_dfctl(lab, 'port', 'list', show=False))
    _step('VMs: namespaces plugged into br-int; addresses by DHCP from the '
          'agent')
    vms = {}
    for name, (_, chassis) in placement.items():
        port = type('Port', (), {'id': ports[name]['id'],
                                 'macs': ports[name]['macs'], 'ips': []})
        vms[name] = lab.add_vm(name, lab.chassis[chassis], port,
                               static_ip=False)
    ok = True
    for name, vm in vms.items():
        lease = None
        deadline = time.monotonic() + 30
        while lease is None and time.monotonic() < deadline:
            lease = vm.dhcp(timeout=5)
        expected = ports[name]['ips'][0]
        print(f'{name} on {vm.chassis.name}: DHCP lease {lease} '
              f'(NB: {expected})')
        ok &= lease == expected
    _step('ping across chassis')
    for src, dst in (('blue1', 'blue2'), ('green2', 'green1')):
        target = ports[dst]['ips'][0]
        reached = any(vms[src].ping(target, count=1, timeout=1)
                      for _ in range(10))
        print(f'{src} -> {dst} ({target}): {"ok" if reached else "FAILED"}')
        ok &= reached
    blocked = not vms['blue1'].ping(ports['green2']['ips'][0], count=2,
                                    timeout=1)
    print(f'blue1 -> green2 (other network, no router): '
          f'{"no route, as expected" if blocked else "REACHED"}')
    ok &= blocked
    _step('a distributed router between blue and green')
    _dfctl(lab, 'router', 'create', '--name', 'r1', show=False)
    for subnet in ('blue-v4', 'green-v4'):
        _dfctl(lab, 'router-interface', 'create', '--router-id', 'r1',
               '--subnet-id', subnet, show=False)
    print(_dfctl(lab, 'router-interface', 'list', show=False))
    for src, dst in (('blue1', 'green2'), ('green1', 'blue2')):
        target = ports[dst]['ips'][0]
        reached = any(vms[src].ping(target, count=1, timeout=1)
                      for _ in range(10))
        print(f'{src} -> {dst} ({target}), routed: '
              f'{"ok" if reached else "FAILED"}')
        ok &= reached
    ok &= _balance(lab, vms, ports)
    ok &= _firewall(lab, vms, ports)
    ok &= _multicast(lab, vms, ports)
    ok &= _outside(lab, vms, ports)
    ok &= _trace(lab, vms, ports)
    _step('flows per chassis and service health')
    for chassis in lab.chassis.values():
        print(f'{chassis.name}: {len(chassis.flows())} flows on br-int')
    print(_dfctl(lab, 'service', 'list', show=False))
    print('demo ' + ('passed' if ok else 'FAILED'))
    return 0 if ok else 1


def _balance(lab, vms, ports):
    """A VIP on blue balanced over a server on each chassis (blue2 on
    ch2, green1 on ch1, routed), by each client's own chassis."""
    _step('a load balancer: VIP on blue, members on both chassis (one '
          'routed), balanced on each client\'s chassis')
    servers = [vms[name].serve_named(name, 8080)
               for name in ('blue2', 'green1')]
    try:
        lb = json.loads(_dfctl(lab, '--json', 'loadbalancer', 'create',
                               '--name', 'web', '--vip-subnet-id', 'blue-v4',
                               show=False))
        _dfctl(lab, 'pool', 'create', '--name', 'web-pool',
               '--loadbalancer-id', 'web', '--protocol', 'TCP',
               '--lb-algorithm', 'ROUND_ROBIN', show=False)
        _dfctl(lab, 'listener', 'create', '--name', 'web-80',
               '--loadbalancer-id', 'web', '--protocol', 'TCP',
               '--protocol-port', '80', '--default-pool-id', 'web-pool',
               show=False)
        for name, subnet in (('blue2', 'blue-v4'), ('green1', 'green-v4')):
            _dfctl(lab, 'member', 'create', '--name', name, '--pool-id',
                   'web-pool', '--address', ports[name]['ips'][0],
                   '--subnet-id', subnet, '--protocol-port', '8080',
                   show=False)
        _dfctl(lab, 'healthmonitor', 'create', '--pool-id', 'web-pool',
               '--type', 'TCP', '--delay', '2', '--timeout', '1',
               '--max-retries', '2', show=False)
        vip = lb['vip_address']
        ok = True
        for client in ('blue1', 'green2'):
            seen = {}
            for _ in range(10):
                seen = vms[client].connections(vip, 80, 20)
                if set(seen) == {'blue2', 'green1'}:
                    break
                time.sleep(1)
            print(f'{client} on {vms[client].chassis.name} -> VIP {vip}:80, '
                  f'20 connections: ' + ', '.join(
                      f'{k} {v}' for k, v in sorted(seen.items())))
            ok &= set(seen) == {'blue2', 'green1'}
        for _ in range(10):
            status = _dfctl(lab, 'loadbalancer', 'status', 'web', show=False)
            if 'NO_MONITOR' not in status:
                break
            time.sleep(1)
        print('$ dfctl loadbalancer status web')
        print(status)
        return ok
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()


def _firewall(lab, vms, ports):
    """A firewall group on blue2 lets only TCP 8080 in: blue1's ping is
    dropped; an allow-icmp rule inserted before it lets ping through."""
    _step('a firewall group on blue2: only TCP 8080 in, then ping allowed '
          'by a rule inserted first')
    target = ports['blue2']['ips'][0]
    _dfctl(lab, 'firewall-rule', 'create', '--name', 'fw-web', '--protocol',
           'tcp', '--destination-port', '8080', '--action', 'allow',
           show=False)
    _dfctl(lab, 'firewall-policy', 'create', '--name', 'fw-in',
           '--firewall-rules', 'fw-web', show=False)
    print(_dfctl(lab, 'firewall-group', 'create', '--name', 'fw-blue2',
                 '--ports', ports['blue2']['id'],
                 '--ingress-firewall-policy-id', 'fw-in', '--log', 'drop',
                 show=False))

    def pings():
        return any(vms['blue1'].ping(target, count=1, timeout=1)
                   for _ in range(3))
    time.sleep(1)                       # the agents take the new group
    blocked = not pings()
    print(f'blue1 -> blue2 ({target}) ping with the group: '
          f'{"dropped, as expected" if blocked else "PASSED"}')
    _dfctl(lab, 'firewall-rule', 'create', '--name', 'fw-ping', '--protocol',
           'icmp', '--action', 'allow', show=False)
    _dfctl(lab, 'firewall-policy', 'insert-rule', 'fw-in', 'fw-ping',
           '--before', 'fw-web')
    allowed = any(pings() for _ in range(5))
    print(f'blue1 -> blue2 ping after insert-rule: '
          f'{"ok" if allowed else "FAILED"}')
    log = os.path.join(vms['blue2'].chassis.dir, 'controller.log')
    with open(log, errors='replace') as f:
        drops = [line.strip() for line in f if 'firewall DROP' in line]
    print('the drop, as ch2\'s agent logged it:')
    print(drops[-1] if drops else '(no log line)')
    _dfctl(lab, 'firewall-group', 'delete', 'fw-blue2', show=False)
    return blocked and allowed and bool(drops)


def _multicast(lab, vms, ports):
    """IGMP snooping on blue: blue2's kernel joins a group, blue1's
    stream reaches it, dfctl multicast list shows the member; after the
    leave the group is gone."""
    _step('multicast: IGMP snooping on blue, blue2 joins 239.1.1.1')
    _dfctl(lab, 'network', 'update', 'blue', '--multicast-snooping', 'true',
           show=False)
    time.sleep(2.5)                     # the agents take the setting
    receiver = Receiver(vms['blue2'], '239.1.1.1')
    try:
        receiver.join()
        listed = ''
        for _ in range(50):             # the agent records the report
            listed = _dfctl(lab, 'multicast', 'list', '--network', 'blue',
                            show=False)
            if '239.1.1.1' in listed:
                break
            time.sleep(0.2)
        got = []
        for i in range(20):             # ... and ch1 learns of it
            send(vms['blue1'], '239.1.1.1', f's{i}', count=5)
            time.sleep(0.3)
            got = receiver.got(f's{i}')
            if got:
                break
        print(f'blue1 -> 239.1.1.1: blue2 got {len(got)} of 5 datagrams')
        print('$ dfctl multicast list --network blue')
        print(listed)
        receiver.leave()
    finally:
        receiver.stop()
    left = False
    for _ in range(30):
        left = '239.1.1.1' not in _dfctl(lab, 'multicast', 'list',
                                         show=False)
        if left:
            break
        time.sleep(0.2)
    print(f'after the leave: {"no member left" if left else "STILL THERE"}')
    return bool(got) and left


def _trace(lab, vms, ports):
    """Why can't blue1 reach green2 on ssh? dfctl trace says, across both
    chassis, and after the fix says it passes."""
    _step('troubleshooting: green2 gets a security group without ssh')
    _dfctl(lab, 'security-group', 'create', '--name', 'web', show=False)
    for rule in (['--direction', 'egress'],
                 ['--direction', 'ingress', '--protocol', 'icmp']):
        _dfctl(lab, 'security-group-rule', 'create', '--security-group-id',
               'web', *rule, show=False)
    _dfctl(lab, 'port', 'update', 'green2', '--security-groups', 'web',
           show=False)
    ask = ('trace', '--from', 'blue1', '--to', 'green2', '--protocol', 'tcp',
           '--dport', '22', '--physical')
    time.sleep(1)                       # the agents take the new group
    dropped = _trace_run(lab, ask + ('--html', REPORT), expect=1)
    print(f'HTML report of that trace: {REPORT} (open it in a browser)')
    _dfctl(lab, 'security-group-rule', 'create', '--security-group-id', 'web',
           '--direction', 'ingress', '--protocol', 'tcp', '--port-range-min',
           '22', '--port-range-max', '22')
    time.sleep(1)
    passed = _trace_run(lab, ask, expect=0)
    _step('dfctl check: services, ports, flow drift, BFD between chassis, '
          'BGP peers')
    healthy = _trace_run(lab, ('check',), expect=0)
    return dropped and passed and healthy


def _trace_run(lab, args, expect):
    print(f'$ dfctl {" ".join(args)}')
    for _ in range(10):
        proc = _run_dfctl(lab, *args)
        if proc.returncode == expect:
            break
        time.sleep(1)
    print(proc.stdout or proc.stderr)
    return proc.returncode == expect


def _outside(lab, vms, ports):
    """SNAT, a floating IP and BGP towards an upstream router."""
    vlan = 200
    _step('the outside: an upstream router (it runs BIRD) on an external '
          f'VLAN network ({vlan} on physnet1); r1 gets its gateway there')
    public = json.loads(_dfctl(
        lab, '--json', 'network', 'create', '--name', 'public',
        '--network-type', 'vlan', '--physical-network', netlab.PHYSNET,
        '--segmentation-id', str(vlan), '--external', 'true', show=False))
    _dfctl(lab, 'subnet', 'create', '--name', 'public-v4', '--network-id',
           'public', '--cidr', netlab.EXTERNAL_CIDR, '--gateway-ip',
           netlab.EXTERNAL_GATEWAY, '--enable-dhcp', 'false', show=False)
    _dfctl(lab, 'router', 'update', 'r1', '--external-gateway',
           f'network_id={public["id"]}')
    upstream = lab.add_external('up')
    upstream.add_address(f'{netlab.EXTERNAL_GATEWAY}/24', vlan=vlan)
    lab.track('upstream-tcp', upstream.serve_tcp(8080).pid)
    ok = True
    _step('distributed SNAT: each VM leaves through its own chassis')
    for name in ('blue1', 'green2'):
        seen = None
        deadline = time.monotonic() + 20
        while seen is None and time.monotonic() < deadline:
            seen = vms[name].connect_tcp(netlab.EXTERNAL_GATEWAY, 8080)
        expected = vms[name].chassis.external_ip
        print(f'{name} on {vms[name].chassis.name} -> upstream '
              f'{netlab.EXTERNAL_GATEWAY}:8080, source seen: {seen} '
              f'({vms[name].chassis.name} external_host_ip {expected})')
        ok &= seen == expected
    _step('a floating IP for blue2: the outside reaches it')
    fip = json.loads(_dfctl(lab, '--json', 'floatingip', 'create',
                            '--floating-network-id', 'public', '--port-id',
                            ports['blue2']['id'], show=False))
    address = fip['floating_ip_address']
    reached = any(upstream.ping(address, count=1, timeout=1)
                  for _ in range(10))
    print(f'upstream -> {address} (blue2 {ports["blue2"]["ips"][0]}): '
          f'{"ok" if reached else "FAILED"}')
    ok &= reached
    _step('BGP: df-bgp peers with BIRD on the upstream router')
    bgp = bgplab.BgpLab(lab, upstream, vlan=vlan).start()
    _dfctl(lab, 'bgp-peer', 'create', '--name', 'upstream', '--peer-ip',
           bgp.bird_ip, '--remote-as', str(bgp.bird_as), show=False)
    _dfctl(lab, 'bgp-speaker', 'create', '--name', 'edge', '--local-as',
           str(bgp.speaker_as), '--peers', 'upstream', '--networks',
           'public', show=False)
    deadline = time.monotonic() + 30
    routes = ''
    while time.monotonic() < deadline:
        routes = bgp.birdc('show', 'route') if bgp.established() else ''
        if f'{address}/32' in routes and '10.1.0.0/24' in routes:
            break
        time.sleep(0.5)
    print('$ birdc show route   (on the upstream router)')
    print(routes)
    ok &= f'{address}/32' in routes and '10.1.0.0/24' in routes
    _dfctl(lab, 'bgp', 'status')
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python3 -m lab_harness.cli', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('--dir', default=DEFAULT_DIR,
                        help=f'lab state directory (default {DEFAULT_DIR})')
    sub = parser.add_subparsers(dest='cmd', required=True)
    sub.add_parser('down', help='tear a kept lab down')
    sub.add_parser('status', help='show what a kept lab runs')
    d = sub.add_parser('demo', help='run the demo')
    d.add_argument('--keep', action='store_true', help='leave the lab up')
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error('the lab needs root (network namespaces)')
    lab = _lab(args.dir)
    if args.cmd == 'down':
        lab.destroy_stale()
        return 0
    if args.cmd == 'status':
        path = os.path.join(lab.dir, 'netlab.json')
        if not os.path.exists(path):
            print('no lab')
            return 0
        with open(path) as f:
            print(f.read())
        return 0
    try:
        return demo(lab)
    except Exception as e:
        print(f'demo FAILED: {e}', file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f'\nlab kept: ZooKeeper at {lab.zk_address}; VMs are '
                  f'namespaces {PREFIX}-<vm>; python3 -m lab_harness.cli down removes it')
        else:
            lab.destroy()


if __name__ == '__main__':
    sys.exit(main())
