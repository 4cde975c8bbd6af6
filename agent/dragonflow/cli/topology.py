"""``dfctl topology``: chassis with their health and ports per network,
networks, routers; ``--html FILE`` draws it as a self-contained page."""
import argparse
import json

from dragonflow import conf as df_conf
from dragonflow.trace import report


def add_parser(resources):
    p = resources.add_parser(
        'topology', help='chassis, networks, routers and service health '
        '(--html draws them)', description=__doc__)
    p.add_argument('--html', metavar='FILE',
                   help='write the topology as a self-contained HTML page')
    p.add_argument('--json', action='store_true', default=argparse.SUPPRESS,
                   help='print JSON')


def run(cli):
    topo = report.topology(cli.nb, df_conf.CONF.df.service_down_time)
    if cli.args.html:
        report.write(cli.args.html, report.topology_page(topo))
    if cli.args.json:
        print(json.dumps(topo, indent=2, sort_keys=True, default=str),
              file=cli.out)
        return 0
    for c in topo['chassis']:
        ports = ', '.join(f'{net}: {n}' for net, n in sorted(
            c['ports'].items())) or 'no ports'
        print(f'chassis {c["id"]} ({c["ip"]}) {c["state"]}: {ports}',
              file=cli.out)
    for r in topo['routers']:
        print(f'router {r["name"]}: {len(r["networks"])} network(s)',
              file=cli.out)
    print(f'{len(topo["networks"])} network(s), {topo["unbound"]} port(s) '
          'bound to no chassis', file=cli.out)
    return 0
