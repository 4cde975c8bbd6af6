"""``dfctl multicast list [--network NET]``: the multicast groups the
agents have learned by IGMP/MLD snooping, with their member ports on each
chassis, and each snooping network's querier.

One row per network, group and chassis; a snooping network without any
group still shows (group ``-``), so its querier settings can be read.
Every chassis queries its own ports (no elected querier), from the
querier address shown (``multicast_querier_address``, else the first
IPv4 subnet's gateway, else 0.0.0.0) and its EUI-64 link-local address
for MLD.
"""
from dragonflow import cli as df_cli
from dragonflow.model import multicast as mcm

COLUMNS = ('network', 'group', 'chassis', 'ports', 'querier')


def add_parser(resources):
    p = df_cli.command(
        resources, 'multicast', 'multicast groups learned by snooping',
        'Multicast groups learned by IGMP/MLD snooping.', 'list',
        'groups, member ports per chassis, querier', __doc__)
    p.add_argument('--network', metavar='NETWORK',
                   help='id or name of one network')


def querier(nb, network):
    address = mcm.querier_address(network, nb.list('subnet',
                                                   network_id=network.id))
    return (f'each chassis, from {address}, every '
            f'{network.multicast_query_interval}s')


def rows(nb, network_id=None):
    """The table's rows (dicts), sorted by network name, group, chassis."""
    networks = {n.id: n for n in nb.list('logical_switch')
                if network_id in (None, n.id)}
    records = [r for r in nb.list(mcm.TABLE) if r.network_id in networks]
    names = {}
    for net_id in {r.network_id for r in records}:
        names.update((p.id, p.name or p.id) for p in nb.list(
            'logical_port', network_id=net_id))
    out = []
    shown = set()
    for record in records:
        network = networks[record.network_id]
        shown.add(network.id)
        out.append({'network': network.name or network.id,
                    'network_id': network.id, 'group': record.address,
                    'chassis': record.chassis,
                    'ports': sorted(names.get(p, p) for p in record.ports),
                    'querier': querier(nb, network)})
    for network in networks.values():
        if network.multicast_snooping and network.id not in shown:
            out.append({'network': network.name or network.id,
                        'network_id': network.id, 'group': '-',
                        'chassis': '-', 'ports': [],
                        'querier': querier(nb, network)})
    return sorted(out, key=lambda r: (r['network'], r['group'],
                                      r['chassis']))


def run(cli):
    network_id = None
    if cli.args.network:
        network_id = cli.resolve('logical_switch', cli.args.network)
        cli.nb.get('logical_switch', network_id)     # NotFound: exit 1
    cli._table(rows(cli.nb, network_id), COLUMNS)
    return 0
