"""``dfctl check``: what is broken now, each with its cause (see
``dragonflow.trace.check``). Exit code 0 only when nothing is wrong."""
import argparse
import json

from dragonflow import conf as df_conf
from dragonflow.trace import check
from dragonflow.trace import report


def add_parser(resources):
    p = resources.add_parser(
        'check', help='list what is broken now, each with its cause',
        description=check.__doc__ + '\nExit code 0 only when nothing is '
        'wrong, 1 otherwise.',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--timeout', type=float, default=5.0, metavar='SECONDS',
                   help='how long each agent may take to answer (default 5)')
    p.add_argument('--json', action='store_true', default=argparse.SUPPRESS,
                   help='print JSON')
    p.add_argument('--html', metavar='FILE',
                   help='also write the findings over the topology as a '
                   'self-contained HTML page')


def run(cli):
    down_time = df_conf.CONF.df.service_down_time
    findings, answers = check.run(cli.nb, down_time, cli.args.timeout)
    if cli.args.html:
        report.write(cli.args.html, report.check_page(
            report.topology(cli.nb, down_time, answers), findings))
    if cli.args.json:
        print(json.dumps({'ok': not findings,
                          'findings': [f.to_dict() for f in findings],
                          'agents': answers}, indent=2, sort_keys=True,
                         default=str), file=cli.out)
    else:
        print(check.text(findings, answers), file=cli.out)
    return 1 if findings else 0
