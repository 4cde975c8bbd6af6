"""``dfctl tap capture PORT``: a port's traffic as tcpdump sees it, from
any chassis host, in one command.

Run on a chassis (next to its ``df-local-controller``, as root), it
creates a temporary monitoring port there: an NB port on the source
port's network (port security off, ``device_owner tap-capture``) plugged
as an OVS internal port of br-int, a tap service on it and a tap flow
from PORT; waits until the local agent has bound the port; runs
``tcpdump`` on it (printing, or writing a pcap with ``-w``) until
``--count`` packets, ``--duration`` seconds or Ctrl-C; and removes all
it created when it ends, fails or is interrupted (SIGINT, SIGTERM):
nothing is left behind in NB or OVS.
"""
import os
import signal
import subprocess
import time

from dragonflow import cli as df_cli
from dragonflow import errors
from dragonflow.conf import CONF

OWNER = 'tap-capture'


def add_parser(resources):
    p = df_cli.command(
        resources, 'tap', 'capture a port\'s traffic (tap as a service)',
        'Tap as a service helpers; the tap-service and tap-flow resources '
        'are the objects themselves.', 'capture',
        'tcpdump a port\'s traffic from this chassis', __doc__)
    p.add_argument('port', metavar='PORT', help='id or name of the port')
    p.add_argument('--direction', default='BOTH', type=str.upper,
                   choices=('IN', 'OUT', 'BOTH'),
                   help='what the port receives (in), sends (out) or both '
                   '(default)')
    p.add_argument('--position', default='after-sg',
                   choices=('after-sg', 'before-sg'),
                   help='copies after the security groups (default) or '
                   'before them (also what they drop)')
    p.add_argument('-w', '--write', metavar='FILE', help='write a pcap file '
                   'instead of printing')
    p.add_argument('--count', type=int, metavar='N',
                   help='stop after N packets')
    p.add_argument('--duration', type=float, metavar='SECONDS',
                   help='stop after this many seconds')
    p.add_argument('--filter', default='', metavar='EXPRESSION',
                   help='tcpdump filter expression')
    p.add_argument('--bridge', default='br-int', help='integration bridge')
    p.add_argument('--ready-timeout', type=float, default=30.0,
                   metavar='SECONDS', help='how long the local agent may '
                   'take to bind the capture port (default 30)')


class _Stop(Exception):
    """SIGTERM, turned into an exception so that cleanup runs."""


def run(cli):
    args = cli.args
    nb = cli.nb
    if args.count is not None and args.count < 1:
        raise errors.ValidationError('--count: must be at least 1')
    source = nb.get('logical_port', cli.resolve('logical_port', args.port))
    name = f'tapc{os.getpid() % 10 ** 7}'
    vsctl = ['ovs-vsctl', f'--db={CONF.df.ovsdb_connection}',
             '--timeout=10']
    made = []           # (table, id), deleted in reverse order

    def stop(signum, frame):
        raise _Stop()
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        port = nb.create('logical_port', {
            'network_id': source.network_id, 'name': name,
            'topic': source.topic, 'port_security_enabled': False,
            'device_owner': OWNER, 'device_id': source.id})
        made.append(('logical_port', port.id))
        subprocess.run(vsctl + [
            'add-port', args.bridge, name, '--', 'set', 'Interface', name,
            'type=internal', f'external_ids:iface-id={port.id}'],
            check=True, capture_output=True, text=True)
        made.append(('ovs', name))
        service = nb.create('tap_service', {'port_id': port.id,
                                            'topic': source.topic,
                                            'name': name})
        made.append(('tap_service', service.id))
        flow = nb.create('tap_flow', {
            'tap_service_id': service.id, 'source_port': source.id,
            'direction': args.direction, 'position': args.position,
            'topic': source.topic, 'name': name})
        made.append(('tap_flow', flow.id))
        _interface_up(name, args.ready_timeout)
        _wait_bound(nb, port.id, args.ready_timeout)
        time.sleep(1.0)      # the agents program the copy flows
        return _tcpdump(name, args)
    except (_Stop, KeyboardInterrupt):
        return 0
    except subprocess.CalledProcessError as e:
        raise errors.NbError(f'{" ".join(e.cmd[:3])}...: '
                             f'{(e.stderr or "").strip()}') from None
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _clean(nb, vsctl, made)
        signal.signal(signal.SIGTERM, previous)


def _interface_up(name, timeout):
    """The internal port's interface, without IPv6 (it must not speak)."""
    deadline = time.monotonic() + timeout
    while subprocess.run(['ip', 'link', 'show', name],
                         capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise errors.NbError(f'interface {name} did not appear: is '
                                 'Open vSwitch running here?')
        time.sleep(0.1)
    subprocess.run(['sysctl', '-qw', f'net.ipv6.conf.{name}.disable_ipv6=1'],
                   capture_output=True)
    subprocess.run(['ip', 'link', 'set', name, 'up'], check=True,
                   capture_output=True)


def _wait_bound(nb, port_id, timeout):
    deadline = time.monotonic() + timeout
    while not nb.get('logical_port', port_id).binding_chassis:
        if time.monotonic() > deadline:
            raise errors.NbError(
                f'the capture port {port_id} was not bound within '
                f'{timeout:g} s: is df-local-controller running on this '
                'host?')
        time.sleep(0.2)


def _tcpdump(name, args):
    cmd = ['tcpdump', '-i', name, '-n', '-U']
    if args.write:
        cmd += ['-w', args.write]
    else:
        cmd += ['-l']
    if args.count:
        cmd += ['-c', str(args.count)]
    if args.filter:
        cmd += args.filter.split()
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait(timeout=args.duration)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        return 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _clean(nb, vsctl, made):
    for table, key in reversed(made):
        if table == 'ovs':
            subprocess.run(vsctl + ['--if-exists', 'del-port', key],
                           capture_output=True)
            continue
        try:
            nb.delete(table, key)
        except errors.NotFound:
            pass
