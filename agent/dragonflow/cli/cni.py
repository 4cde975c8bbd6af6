"""``dfctl cni gc [--grace SECONDS]``: remove the ports of containers
that are gone, on this chassis (as root, next to its agent).

A container whose network namespace is gone, or has no process left
(an engine that crashed, a container killed so that CNI DEL never ran),
loses its br-int port, its veth and its NB port, once it was plugged
longer ago than the grace period (default 60 s: an ADD in progress is
never taken). Prints what it removed (``--json``: as a list).
"""
import json

from dragonflow import cli as df_cli
from dragonflow import errors
from dragonflow.cni import gc
from dragonflow.conf import CONF


def add_parser(resources):
    p = df_cli.command(
        resources, 'cni', 'container ports (the dragonflow-cni plugin)',
        'Container ports made by the dragonflow-cni plugin.', 'gc',
        'remove the ports of containers that are gone', __doc__)
    p.add_argument('--grace', type=float, default=gc.DEFAULT_GRACE,
                   metavar='SECONDS', help='leave ports plugged less than '
                   'this long ago (default %(default)s)')


def run(cli):
    if cli.args.grace < 0:
        raise errors.ValidationError('--grace: must not be negative')
    vsctl = ['ovs-vsctl', f'--db={CONF.df.ovsdb_connection}', '--timeout=10']
    removed = gc.collect(cli.nb, vsctl, CONF.df.integration_bridge,
                         cli.args.grace)
    if cli.args.json:
        print(json.dumps([{'port': p, 'container': c} for p, c in removed]),
              file=cli.out)
    else:
        for port_id, container in removed:
            print(f'removed port {port_id} of container {container}',
                  file=cli.out)
        print(f'{len(removed)} container port(s) collected', file=cli.out)
    return 0
