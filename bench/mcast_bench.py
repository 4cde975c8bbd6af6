#!/usr/bin/env python3
"""Multicast with IGMP snooping in the lab (root; real OVS, ZooKeeper,
agents, VM kernels joining with the socket API), on 4 chassis: a sender
on ch1, one receiver on each of ch2..ch4, only ch2's joined.

- Underlay packets per multicast packet sent: with snooping (one copy, to
  ch2) against the same network with snooping off (flooded to every
  chassis with ports), same run, as a ratio.
- Join → first packet received, while the sender streams (1 packet per
  ms): p50/p99 over ``--joins`` joins (each followed by a v3 leave).
- 1,000 IGMP reports per second from one VM (distinct groups) for
  ``--seconds``: the snooping agent's CPU against its idle CPU, the
  reports it took (the rate limit, ``multicast.REPORT_RATE``), and the
  stream to the member meanwhile (packets lost, against before)."""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from benchlab import lab_session, pct, wait, write_json  # noqa: E402
from lab_harness.multicast_hosts import Receiver, SENDER  # noqa: E402
from dragonflow.controller.apps import multicast  # noqa: E402
from dragonflow.model import multicast as mcm  # noqa: E402

GROUP = '239.7.7.7'
REPORTS = r'''
import socket, struct, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
             socket.inet_aton('0.0.0.0') * 2 +
             struct.pack('@i', socket.if_nametoindex('eth0')))
def report(group):
    body = struct.pack('!BBH4s', 0x16, 0, 0, socket.inet_aton(group))
    total = sum(struct.unpack('!4H', body))
    total = (total & 0xffff) + (total >> 16)
    return struct.pack('!BBH4s', 0x16, 0, ~total & 0xffff,
                       socket.inet_aton(group))
start, sent = time.monotonic(), 0
while time.monotonic() - start < seconds:
    group = f'239.20.{sent // 250 % 4}.{sent % 250 + 1}'
    s.sendto(report(group), (group, 0))
    sent += 1
    time.sleep(max(0, start + sent / rate - time.monotonic()))
print(sent)
'''


def vm(lab, nb, name, net, chassis):
    port = nb.create('logical_port', {'network_id': net.id, 'name': name})
    machine = lab.add_vm(name, lab.chassis[chassis], port)
    machine.port = port
    return machine


def stream(sender, tag, count, interval):
    return subprocess.Popen(['ip', 'netns', 'exec', sender.ns, sys.executable,
                             '-c', SENDER, GROUP, '5007', str(count),
                             str(interval), tag, '4'])


def underlay_copies(lab, sender, count):
    """Geneve packets of the group on the underlay per packet sent (a
    pcap written with a big buffer, read afterwards: a line-buffered
    capture drops packets on a busy machine)."""
    pcap = os.path.join(lab.dir, 'mcast-underlay.pcap')
    capture = subprocess.Popen(['tcpdump', '-B', '16384', '-w', pcap, '-i',
                                lab.bridge, 'udp port 6081'],
                               stderr=subprocess.DEVNULL)
    time.sleep(1)
    stream(sender, "u", count, 0.004).wait()
    time.sleep(0.5)
    capture.terminate()
    capture.wait(timeout=10)
    out = subprocess.run(['tcpdump', '-nn', '-r', pcap], capture_output=True,
                         text=True).stdout
    os.unlink(pcap)
    return sum(f'> {GROUP}.' in line for line in out.splitlines()) / count


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def cpu_share(pid, seconds, during=None):
    """Share of one core pid used over seconds (during runs meanwhile)."""
    before, start = cpu_seconds(pid), time.monotonic()
    result = during() if during else time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - start), result


def bench(lab, nb, joins, seconds):
    net = nb.create('logical_switch', {'name': 'mc', 'multicast_snooping':
                                       True})
    nb.create('subnet', {'network_id': net.id, 'cidr': '10.143.0.0/24'})
    sender = vm(lab, nb, 'mcs', net, 'ch1')
    vms = {ch: vm(lab, nb, f'mcr{ch[-1]}', net, ch)
           for ch in ('ch2', 'ch3', 'ch4')}
    receivers = {ch: Receiver(machine, GROUP) for ch, machine in vms.items()}
    member = receivers['ch2']
    try:
        member.join()
        assert wait(lambda: any(r.address == GROUP
                                for r in nb.list(mcm.TABLE)), 30), 'joined'
        warm = stream(sender, 'w', 200, 0.005)
        warm.wait()
        assert wait(lambda: member.got('w'), 10), 'the member gets it'
        snooped = underlay_copies(lab, sender, 1000)
        nb.patch('logical_switch', net.id, {'multicast_snooping': False})
        time.sleep(2)
        flooded = underlay_copies(lab, sender, 1000)
        nb.patch('logical_switch', net.id, {'multicast_snooping': True})
        # Snooping on again: the agent queries at once, the member's
        # kernel reports again.
        assert wait(lambda: any(r.address == GROUP
                                for r in nb.list(mcm.TABLE)), 30), 'again'
        # Join → first packet, the sender streaming at 1,000 packets/s.
        latencies = []
        other = receivers['ch3']
        for i in range(joins):
            tag = f'j{i}'
            sending = stream(sender, tag, 100000, 0.001)
            time.sleep(0.3)
            start = time.monotonic()
            other.join()
            ok = wait(lambda: other.got(tag), 10, interval=0.001)
            latencies.append(time.monotonic() - start if ok else 10.0)
            other.leave()
            sending.kill()
            sending.wait()
            time.sleep(0.5)
        # 1,000 reports/s from ch3's VM against its agent.
        pid = lab.chassis['ch3'].controller_pid
        idle, _ = cpu_share(pid, 5)
        before = stream(sender, 'b', 2000, 0.002)
        before.wait()
        time.sleep(0.5)
        base_got = len(member.got('b'))

        def flood():
            during = stream(sender, 'd', int(seconds / 0.002), 0.002)
            proc = subprocess.run(
                ['ip', 'netns', 'exec', vms['ch3'].ns, sys.executable, '-c',
                 REPORTS, '1000', str(seconds)], capture_output=True,
                text=True, check=True, timeout=seconds + 60)
            during.wait()
            return int(proc.stdout)
        busy, sent = cpu_share(pid, seconds, flood)
        time.sleep(1)
        recorded = sum(len(r.ports) for r in nb.list(mcm.TABLE)
                       if r.chassis == 'ch3')
        flood_got = len(member.got('d'))
        flood_sent = int(seconds / 0.002)
    finally:
        for receiver in receivers.values():
            receiver.stop()
    results = {
        'underlay_per_packet_snooping': snooped,
        'underlay_per_packet_flooding': flooded,
        'underlay_ratio': snooped / flooded if flooded else None,
        'join_to_first_packet_p50_ms': pct(latencies, 50) * 1000,
        'join_to_first_packet_p99_ms': pct(latencies, 99) * 1000,
        'joins': joins,
        'agent_cpu_idle': idle, 'agent_cpu_1000_reports': busy,
        'reports_sent': sent, 'seconds': seconds,
        'groups_recorded': recorded,
        'report_rate_limit': multicast.REPORT_RATE,
        'stream_loss_before': 1 - base_got / 2000,
        'stream_loss_during_reports': 1 - flood_got / flood_sent,
    }
    print(f'multicast: {snooped:.2f} underlay packets per multicast packet '
          f'with snooping (1 of 3 remote chassis joined) vs {flooded:.2f} '
          f'flooded (ratio {results["underlay_ratio"]:.2f}); join → first '
          f'packet p50 {results["join_to_first_packet_p50_ms"]:.0f} ms, p99 '
          f'{results["join_to_first_packet_p99_ms"]:.0f} ms ({joins} joins, '
          f'sender at 1,000 packets/s); {sent} IGMP reports in {seconds} s: '
          f'agent CPU {busy:.0%} of a core (idle {idle:.1%}), '
          f'{recorded} groups recorded (rate limit '
          f'{multicast.REPORT_RATE:.0f}/s), stream loss '
          f'{results["stream_loss_during_reports"]:.1%} during vs '
          f'{results["stream_loss_before"]:.1%} before')
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--joins', type=int, default=20)
    parser.add_argument('--seconds', type=int, default=10)
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()
    with lab_session('dfm', '172.30.71.0/24',
                     ['ch1', 'ch2', 'ch3', 'ch4']) as (lab, nb):
        results = bench(lab, nb, args.joins, args.seconds)
    write_json(args.json, results)


if __name__ == '__main__':
    main()
