"""dfctl: the operator CLI over the NB API.

Resources and their options are generated from the NB models: every model
with a ``cli_name`` gets ``create``, ``show``, ``list``, ``update`` and
``delete``, with one option per field. References accept an id or a unique
name. ``dfctl apply -f FILE`` creates or updates many objects from a YAML or
JSON file in bulk (see ``dragonflow.cli.apply``). ``dfctl trace`` follows a
packet through the model and the real flows (``dragonflow.cli.trace``);
``dfctl check`` lists what is broken (``dragonflow.cli.check``), ``dfctl
topology`` shows chassis, networks and routers; all three draw HTML pages.
``dfctl tap capture PORT`` runs tcpdump on a port's mirrored traffic from
the chassis it runs on (``dragonflow.cli.tapcapture``).
Exit codes: 0 ok, 1 refused (invalid input, missing reference,
conflict, not found), 2 usage error, 3 ZooKeeper unreachable.
"""
import argparse
import json
import logging
import sys

from kazoo import exceptions as kz
from kazoo.retry import RetryFailedError

from dragonflow import conf as df_conf
from dragonflow import errors
from dragonflow.cli import apply as df_apply
from dragonflow.cli import check as df_check
from dragonflow.cli import cni as df_cni
from dragonflow.cli import firewall as df_firewall
from dragonflow.cli import lbstatus
from dragonflow.cli import multicast as df_multicast
from dragonflow.cli import topology as df_topology
from dragonflow.cli import tapcapture as df_tapcapture
from dragonflow.cli import trace as df_trace
from dragonflow.model import base
from dragonflow.model import fields as f
from dragonflow.nb import api as nb_api
from dragonflow.nb import health

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
VERBS = ('create', 'show', 'list', 'update', 'delete')
READ_ONLY = {'service': ('show', 'list', 'delete')}
# Fields computed by the NB API, not set by users.
DERIVED = {'subnets', 'unique_key', 'vip_network_id', 'vip_port_id'}
STATUS_LISTS = {'service': health.service_status,
                'chassis': health.chassis_status}
STATUS_COLUMNS = {'service': ('id', 'binary', 'chassis', 'host', 'version',
                              'state', 'since'),
                  'chassis': ('id', 'hostname', 'ip', 'tunnel_types',
                              'state', 'since')}


def _opt(name):
    return '--' + name.replace('_', '-')


def _metavar(field):
    if isinstance(field, f.List):
        return f'{field.item.type_name.upper().replace(" ", "_")}[,...]'
    if isinstance(field, f.Enum):
        return '{' + ','.join(map(str, field.values)) + '}'
    return field.type_name.upper().replace(' ', '_')


def _add_field_options(parser, model, updating):
    for name, field in model.fields().items():
        if name in DERIVED or (updating and (field.immutable or name == 'id')):
            continue
        helptext = field.help or name
        if field.required and not updating:
            helptext += ' (required)'
        parser.add_argument(_opt(name), dest=f'field_{name}',
                            metavar=_metavar(field), help=helptext)


def build_parser():
    parser = argparse.ArgumentParser(
        prog='dfctl', description='Manage the Dragonflow northbound database '
        '(networks, subnets, ports, routers, ...) in ZooKeeper.',
        epilog='Configuration: /etc/dragonflow/dragonflow.ini, --config-file, '
        'or OS_DF__<OPTION> environment variables (e.g. '
        'OS_DF__REMOTE_DB_HOSTS=10.0.0.5:2181). Exit codes: 0 ok, 1 refused, '
        '2 usage error, 3 ZooKeeper unreachable.')
    parser.add_argument('--config-file', action='append', default=[],
                        help='configuration file (repeatable)')
    parser.add_argument('--config-dir', action='append', default=[],
                        help='directory of *.conf files')
    parser.add_argument('--json', action='store_true',
                        help='print JSON instead of tables')
    parser.add_argument('--debug', action='store_true', help='verbose logs')
    resources = parser.add_subparsers(dest='resource', metavar='RESOURCE')
    resources.required = True
    bgp = resources.add_parser('bgp', help='BGP service state',
                               description='State of the df-bgp speakers')
    bgp_verbs = bgp.add_subparsers(dest='verb', metavar='VERB')
    bgp_verbs.required = True
    bgp_verbs.add_parser('status', help='peers, session state and '
                         'advertised routes of every speaker')
    apply = resources.add_parser(
        'apply', help='create or update many objects from a file',
        description=df_apply.__doc__.split('\n\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    apply.add_argument('-f', '--file', required=True, metavar='FILE',
                       help='YAML (.yaml/.yml) or JSON file of objects')
    apply.add_argument('--dry-run', action='store_true',
                       help='check the file and say what would change, '
                       'writing nothing')
    df_trace.add_parser(resources)
    df_check.add_parser(resources)
    df_topology.add_parser(resources)
    df_tapcapture.add_parser(resources)
    df_multicast.add_parser(resources)
    df_cni.add_parser(resources)
    for table, model in sorted(base.tables().items(),
                               key=lambda kv: kv[1].cli_name or ''):
        if not model.cli_name:
            continue
        doc = (model.__doc__ or table).strip().splitlines()[0]
        res = resources.add_parser(model.cli_name, help=doc, description=doc)
        verbs = res.add_subparsers(dest='verb', metavar='VERB')
        verbs.required = True
        for verb in READ_ONLY.get(table, VERBS):
            _add_verb(verbs, verb, model)
        if table == 'firewall_policy':
            df_firewall.add_parsers(verbs)
        if table == 'loadbalancer':
            p = verbs.add_parser(
                'status', help='the tree of listeners, pools, health '
                'monitor and members with their operating status',
                description=lbstatus.__doc__.split('\n\n', 1)[1],
                formatter_class=argparse.RawDescriptionHelpFormatter)
            p.add_argument('ref', metavar='ID_OR_NAME')
    return parser


def _add_verb(verbs, verb, model):
    name = model.cli_name
    if verb == 'create':
        p = verbs.add_parser('create', help=f'create a {name}')
        _add_field_options(p, model, updating=False)
    elif verb == 'show':
        p = verbs.add_parser('show', help=f'show one {name}')
        p.add_argument('ref', metavar='ID_OR_NAME')
    elif verb == 'list':
        p = verbs.add_parser('list', help=f'list {name} objects')
        p.add_argument('--where', action='append', default=[],
                       metavar='FIELD=VALUE', help='filter (repeatable)')
    elif verb == 'update':
        p = verbs.add_parser('update', help=f'change fields of a {name}')
        p.add_argument('ref', metavar='ID_OR_NAME')
        p.add_argument('--version', type=int,
                       help='fail unless the object is at this version')
        p.add_argument('--unset', action='append', default=[],
                       metavar='FIELD', help='clear a field (repeatable)')
        _add_field_options(p, model, updating=True)
    elif verb == 'delete':
        p = verbs.add_parser('delete', help=f'delete a {name}')
        p.add_argument('ref', metavar='ID_OR_NAME')
        p.add_argument('--version', type=int,
                       help='fail unless the object is at this version')
        p.add_argument('--cascade', action='store_true',
                       help='also delete the objects that use it (all in one '
                       'transaction: refused as a whole or done)')
        p.add_argument('--force', action='store_true',
                       help='remove an object whose stored body is invalid '
                       '(give its id): with the references it holds, its '
                       'unique keys and feed membership, in one transaction')


class Cli:
    def __init__(self, nb, args, out=sys.stdout):
        self.nb = nb
        self.args = args
        self.out = out
        self.model = next((m for m in base.tables().values()
                           if m.cli_name == args.resource), None)
        self.table = self.model.table if self.model else None

    def run(self):
        if self.args.resource == 'bgp':
            return self.do_bgp_status()
        if self.args.resource == 'apply':
            return self.do_apply()
        if self.args.resource == 'trace':
            return df_trace.run(self)
        if self.args.resource == 'check':
            return df_check.run(self)
        if self.args.resource == 'topology':
            return df_topology.run(self)
        if self.args.resource == 'tap':
            return df_tapcapture.run(self)
        if self.args.resource == 'multicast':
            return df_multicast.run(self)
        if self.args.resource == 'cni':
            return df_cni.run(self)
        return getattr(self, f'do_{self.args.verb.replace("-", "_")}')()

    def do_apply(self):
        items = df_apply.load(self.args.file)
        applier = df_apply.Applier(self.nb)
        if self.args.dry_run:
            counts = applier.plan(items)[1]
        else:
            counts = applier.apply(items)
        if self.args.json:
            print(json.dumps(dict(counts, dry_run=self.args.dry_run)),
                  file=self.out)
        else:
            print(f'{"would create" if self.args.dry_run else "created"} '
                  f'{counts["created"]}, updated {counts["updated"]}, '
                  f'unchanged {counts["unchanged"]}', file=self.out)

    def do_bgp_status(self):
        """What each df-bgp speaker reported (peers, state, routes)."""
        statuses = health.bgp_statuses(self.nb)
        if self.args.json:
            print(json.dumps(statuses, indent=2, sort_keys=True),
                  file=self.out)
            return
        for status in statuses:
            print(f'speaker {status["speaker"]} (AS {status["local_as"]})',
                  file=self.out)
            self._table([dict(p, kind='peer') for p in status['peers']],
                        ('ip', 'remote_as', 'state'))
            self._table(status['routes'], ('prefix', 'next_hop'))

    # --- verbs -----------------------------------------------------------
    def do_create(self):
        obj = self.nb.create(self.table, self._field_values())
        self._show(obj.to_api())

    def do_show(self):
        self._show(self.nb.get(self.table, self.resolve(self.table,
                                                        self.args.ref)).to_api())

    def do_list(self):
        filters = {}
        for cond in self.args.where:
            key, sep, value = cond.partition('=')
            field = self.model.fields().get(key.replace('-', '_'))
            if not sep or field is None:
                raise errors.ValidationError(
                    f'--where {cond}: expected FIELD=VALUE with a field of '
                    f'{self.model.cli_name}')
            filters[field.name] = field.parse(value, f'{self.table}.{key}')
        if self.table in STATUS_LISTS:
            rows = STATUS_LISTS[self.table](
                self.nb, df_conf.CONF.df.service_down_time)
            rows = [r for r in rows
                    if all(r.get(k) == v for k, v in filters.items())]
            return self._table(rows, STATUS_COLUMNS[self.table])
        skipped = []
        found = self.nb.list(self.table, skipped=skipped, **filters)
        rows = [o.to_api() for o in sorted(
            found, key=lambda o: (getattr(o, 'name', '') or '', o.id))]
        self._table(rows, self.model.cli_columns)
        for obj_id, reason in skipped:
            print(f'dfctl: skipped {self.table} {obj_id}: {reason}',
                  file=sys.stderr)
        if skipped:
            print(f'dfctl: {len(skipped)} {self.table} object(s) not '
                  'listed: their stored body is invalid', file=sys.stderr)

    def do_update(self):
        obj_id = self.resolve(self.table, self.args.ref)
        values = self._field_values()
        for name in self.args.unset:
            field = self.model.fields().get(name.replace('-', '_'))
            if field is None or field.immutable:
                raise errors.ValidationError(
                    f'--unset {name}: not a changeable field of '
                    f'{self.model.cli_name}')
            values[field.name] = None
        if not values:
            raise errors.ValidationError('update: nothing to change (give '
                                         'field options or --unset)')
        obj = self.nb.patch(self.table, obj_id, values, self.args.version)
        self._show(obj.to_api())

    def do_insert_rule(self):
        policy = self.resolve(self.table, self.args.ref)
        refs = {k: self.resolve('firewall_rule', getattr(self.args, k))
                for k in ('rule', 'before', 'after')
                if getattr(self.args, k)}
        self._show(df_firewall.insert_rule(
            self.nb, policy, refs['rule'], refs.get('before'),
            refs.get('after')).to_api())

    def do_remove_rule(self):
        self._show(df_firewall.remove_rule(
            self.nb, self.resolve(self.table, self.args.ref),
            self.resolve('firewall_rule', self.args.rule)).to_api())

    def do_status(self):
        status = lbstatus.tree(self.nb, self.resolve(self.table,
                                                     self.args.ref))
        if self.args.json:
            print(json.dumps(status, indent=2, sort_keys=True),
                  file=self.out)
        else:
            print('\n'.join(lbstatus.lines(status)), file=self.out)

    def do_delete(self):
        if self.args.force:
            if self.args.cascade or self.args.version is not None:
                raise errors.ValidationError(
                    'delete --force takes no --cascade or --version')
            obj_id = self.args.ref
            self.nb.force_delete(self.table, obj_id)
        else:
            obj_id = self.resolve(self.table, self.args.ref)
            self.nb.delete(self.table, obj_id, version=self.args.version,
                           cascade=self.args.cascade)
        if self.args.json:
            print(json.dumps({'deleted': obj_id, 'table': self.table}),
                  file=self.out)
        else:
            print(f'deleted {self.model.cli_name} {obj_id}', file=self.out)

    # --- helpers ---------------------------------------------------------
    def _field_values(self):
        values = {}
        for name, field in self.model.fields().items():
            text = getattr(self.args, f'field_{name}', None)
            if text is None:
                continue
            value = field.parse(text, f'{self.table}.{name}')
            values[name] = self._resolve_refs(field, value)
        return values

    def _resolve_refs(self, field, value):
        if isinstance(field, f.Ref):
            return self.resolve(field.table, value)
        if isinstance(field, f.List) and isinstance(field.item, f.Ref):
            return [self.resolve(field.item.table, v) for v in value]
        return value

    def resolve(self, table, ref):
        """An id, or the id of the one object of the table with that name."""
        try:
            self.nb.get(table, ref)
            return ref
        except errors.NotFound:
            pass
        except errors.CorruptObject:
            return ref
        if 'name' not in base.model_for(table).fields():
            return ref
        matches = [o.id for o in self.nb.list(table, name=ref)]
        if len(matches) > 1:
            raise errors.ValidationError(f'{table} name {ref!r} is ambiguous '
                                         f'({", ".join(matches)}); use the id')
        return matches[0] if matches else ref

    def _show(self, data):
        if self.args.json:
            print(json.dumps(data, indent=2, sort_keys=True), file=self.out)
            return
        width = max(len(k) for k in data)
        for key in sorted(data):
            print(f'{key:<{width}}  {_cell(data[key])}', file=self.out)

    def _table(self, rows, columns):
        if self.args.json:
            print(json.dumps(rows, indent=2, sort_keys=True), file=self.out)
            return
        cells = [[_cell(row.get(c), c) for c in columns] for row in rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells])
                  for i, c in enumerate(columns)]
        print('  '.join(c.upper().ljust(w) for c, w in zip(columns, widths))
              .rstrip(), file=self.out)
        for r in cells:
            print('  '.join(v.ljust(w) for v, w in zip(r, widths)).rstrip(),
                  file=self.out)


def _cell(value, column=None):
    if value is None:
        return '-'
    if column == 'since' and isinstance(value, (int, float)):
        return health.since_text(value)
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, list):
        return ','.join(_cell(v) for v in value) if value else '-'
    if isinstance(value, dict):
        return ','.join(f'{k}={_cell(v)}' for k, v in sorted(value.items()))
    return str(value)


def main(argv=None, out=sys.stdout):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format='%(levelname)s %(name)s: %(message)s')
    oslo_args = []
    for path in args.config_file:
        oslo_args += ['--config-file', path]
    for path in args.config_dir:
        oslo_args += ['--config-dir', path]
    nb = None
    try:
        conf = df_conf.load(oslo_args, prog='dfctl')
        nb = nb_api.NbApi.from_conf(conf)
        return Cli(nb, args, out).run() or EXIT_OK
    except errors.NbUnavailable as e:
        print(f'dfctl: error: {e}', file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (kz.ConnectionLoss, kz.SessionExpiredError, RetryFailedError,
            kz.OperationTimeoutError) as e:
        print(f'dfctl: error: lost the ZooKeeper connection '
              f'({type(e).__name__})', file=sys.stderr)
        return EXIT_UNAVAILABLE
    except errors.NbError as e:
        print(f'dfctl: error: {e}', file=sys.stderr)
        return EXIT_REFUSED
    except Exception as e:  # config errors and the like: one line, not a trace
        if args.debug:
            raise
        print(f'dfctl: error: {type(e).__name__}: {e}', file=sys.stderr)
        return EXIT_REFUSED
    finally:
        if nb is not None:
            nb.close()


if __name__ == '__main__':
    sys.exit(main())
