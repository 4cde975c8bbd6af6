"""``dfctl trace``: why can (or can't) A reach B.

The logical trace walks the NB model stage by stage (port security,
security groups, chains, ARP/ND, L2, routing, NAT, the destination
chassis and tunnel, the destination's ingress rules) and names the object
that decides each step. ``--physical`` also asks the agents on the path
to run the packet through their real flows (``ofproto/trace``), each flow
annotated with its app and NB object; where the model and the switches
part, the first line says so. Exit code 0 when the packet gets through
(and, with --physical, the switches agree), 1 when it is dropped.
"""
import argparse
import ipaddress
import json
import re

from dragonflow import conf as df_conf
from dragonflow import errors
from dragonflow.trace import logical as lt
from dragonflow.trace import physical as pt
from dragonflow.trace import report

MAC = re.compile(r'^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$')


def _port_number(text):
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f'{text} is not a port (1-65535)')
    return value


def _vlan(text):
    value = int(text)
    if not 0 < value < 4095:
        raise argparse.ArgumentTypeError(f'{text} is not a VLAN id (1-4094)')
    return value


def _ip(text):
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text} is not an IP address') from None


def _mac(text):
    if not MAC.match(text):
        raise argparse.ArgumentTypeError(f'{text} is not a MAC address')
    return text.lower()


def add_parser(resources):
    doc = __doc__.split('\n\n', 1)
    p = resources.add_parser(
        'trace', help='follow a packet from a port through the model '
        '(and the real flows with --physical)', description=doc[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--from', dest='src', required=True,
                   metavar='PORT', help='source port (id or name)')
    p.add_argument('--to', dest='dst', required=True, metavar='PORT|IP',
                   help='destination port (id or name) or IP address')
    p.add_argument('--protocol', choices=lt.PROTOCOLS, default='icmp',
                   help='icmp (echo request; ICMPv6 with IPv6), tcp or udp '
                   '(default icmp)')
    p.add_argument('--dport', type=_port_number, metavar='N',
                   help='destination port (tcp/udp; default 22 / 53)')
    p.add_argument('--sport', type=_port_number, metavar='N',
                   help='source port (tcp/udp; default 40000)')
    p.add_argument('--src-ip', type=_ip, metavar='IP',
                   help='source address (default: the port\'s own)')
    p.add_argument('--src-mac', type=_mac, metavar='MAC',
                   help='source MAC (default: the port\'s own)')
    p.add_argument('--vlan', type=_vlan, metavar='N',
                   help='sent tagged by a trunk parent: the subport on VLAN N')
    p.add_argument('--ipv6', action='store_true',
                   help='IPv6 (implied by an IPv6 --to or --src-ip)')
    p.add_argument('--physical', action='store_true',
                   help='also trace on the real switches of the path')
    p.add_argument('--timeout', type=float, default=5.0, metavar='SECONDS',
                   help='how long each chassis may take to answer '
                   '(--physical; default 5)')
    p.add_argument('--json', action='store_true', default=argparse.SUPPRESS,
                   help='print JSON')
    p.add_argument('--html', metavar='FILE',
                   help='also write the trace as a self-contained HTML page '
                   '(the path hop by hop, the failing hop in red, click a '
                   'hop for its flows; the topology)')


def packet(cli):
    """The Packet the arguments describe (ports resolved by id or name)."""
    a = cli.args
    src = cli.resolve('logical_port', a.src)
    cli.nb.get('logical_port', src)          # NotFound: a clear error
    to_port = to_ip = None
    try:
        to_port = cli.resolve('logical_port', a.dst)
        cli.nb.get('logical_port', to_port)
    except errors.NotFound:
        to_port = None
        try:
            to_ip = str(ipaddress.ip_address(a.dst))
        except ValueError:
            raise errors.ValidationError(
                f'--to {a.dst}: no port has that id or name, and it is not '
                'an IP address') from None
    if a.protocol == 'icmp' and (a.dport or a.sport):
        raise errors.ValidationError('--dport/--sport need --protocol tcp '
                                     'or udp')
    ipv6 = a.ipv6 or any(v and ipaddress.ip_address(v).version == 6
                         for v in (to_ip, a.src_ip))
    return lt.Packet(src, to_port, to_ip, a.protocol, a.sport, a.dport,
                     a.src_ip, a.src_mac, a.vlan, ipv6)


def run(cli):
    """Run the trace the arguments ask for; the exit code."""
    a = cli.args
    logical = lt.trace(lt.load(cli.nb), packet(cli))
    hops, disagree = None, None
    if a.physical:
        hops = pt.trace(cli.nb, logical, df_conf.CONF.df.service_down_time,
                        a.timeout)
        disagree = pt.disagreement(logical, hops)
    if a.html:
        report.write(a.html, report.trace_page(
            report.topology(cli.nb, df_conf.CONF.df.service_down_time),
            logical.to_dict(), hops, disagree))
    through = logical.delivered
    if hops is not None:
        phys, _ = pt.verdict(hops)
        through = through and phys in ('delivered', 'out')
    if a.json:
        out = {'logical': logical.to_dict(), 'delivered': through}
        if hops is not None:
            out.update(physical=hops, disagreement=disagree)
        print(json.dumps(out, indent=2, sort_keys=True, default=str),
              file=cli.out)
    else:
        if disagree:
            print(disagree, file=cli.out)
        print(logical.text(), file=cli.out)
        if hops is not None:
            print('\nphysical:', file=cli.out)
            print(pt.text(hops), file=cli.out)
    return 0 if through else 1
