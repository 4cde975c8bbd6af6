"""``dfctl apply -f FILE``: bring the NB to what a file of objects says,
in bulk (NbApi.write_many: many objects per ZooKeeper transaction).

The file is YAML (``.yaml``/``.yml``, needs PyYAML) or JSON: a list of
objects, or ``{"objects": [...]}``; each object names its resource with
``kind`` (the dfctl resource name, e.g. ``network``, ``port``) and gives
fields as ``dfctl <kind> create`` takes them (references by id or by
unique name). An object is found by its ``id`` if given, else by its
``name``: a missing one is created, one whose given fields differ is
updated with them, an equal one is left alone, so applying a file twice
changes nothing the second time. Objects are written in file order, in
bulk per run of one kind, so a port may name a network created above it.
Every object is checked before anything is written (unknown kinds and
fields, missing references, an object without id or name, values its
model refuses); what only the store can tell (an address already taken,
overlapping subnets) is checked per run of one kind, before that run is
written. A refusal names the object by its place in the file; runs
written before it stay, and applying the file again after a fix goes on
from there.
"""
import json
import os

from dragonflow import errors
from dragonflow.model import base
from dragonflow.model import fields as f


def load(path):
    """The list of object dicts in a file."""
    try:
        with open(path) as stream:
            text = stream.read()
    except OSError as e:
        raise errors.ValidationError(f'{path}: {e.strerror}') from None
    if os.path.splitext(path)[1] in ('.yaml', '.yml'):
        try:
            import yaml
        except ImportError:
            raise errors.ValidationError(
                f'{path}: YAML needs PyYAML (python3-yaml); or give JSON')
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise errors.ValidationError(f'{path}: not valid YAML: '
                                         f'{str(e).splitlines()[0]}')
    else:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise errors.ValidationError(f'{path}: not valid JSON: {e}')
    if isinstance(data, dict) and 'objects' in data:
        data = data['objects']
    if not isinstance(data, list) or \
            not all(isinstance(o, dict) for o in data):
        raise errors.ValidationError(f'{path}: expected a list of objects '
                                     '(or {"objects": [...]})')
    return data


class Applier:
    """Plans and writes one file's objects."""

    def __init__(self, nb):
        self.nb = nb
        self.models = {m.cli_name: m for m in base.tables().values()
                       if m.cli_name}
        self._names = {}        # table -> {name: [ids]}
        self._objects = {}      # table -> {id: obj}

    # --- reading what is there --------------------------------------------
    def _existing(self, table):
        if table not in self._objects:
            objs = self.nb.list(table)
            self._objects[table] = {o.id: o for o in objs}
            names = {}
            for o in objs:
                if getattr(o, 'name', None):
                    names.setdefault(o.name, []).append(o.id)
            self._names[table] = names
        return self._objects[table]

    def _find(self, table, ref):
        """The id of the object with that id or unique name, or None."""
        objs = self._existing(table)
        if ref in objs:
            return ref
        ids = self._names[table].get(ref, [])
        if len(ids) > 1:
            raise errors.ValidationError(
                f'{table} name {ref!r} is ambiguous ({", ".join(ids)}); '
                'use the id')
        return ids[0] if ids else None

    def _remember(self, obj):
        self._existing(obj.table)[obj.id] = obj
        if getattr(obj, 'name', None):
            ids = self._names[obj.table].setdefault(obj.name, [])
            if obj.id not in ids:
                ids.append(obj.id)

    # --- planning ---------------------------------------------------------
    def _fields(self, where, model, item, planned):
        """The item's fields, parsed, with references resolved."""
        values = {}
        known = model.fields()
        for key, value in item.items():
            if key == 'kind':
                continue
            name = key.replace('-', '_')
            field = known.get(name)
            if field is None:
                raise errors.ValidationError(
                    f'{where}: unknown field {key!r} of {model.cli_name}')
            if isinstance(value, str) and not isinstance(field, f.String):
                value = field.parse(value, f'{model.table}.{name}')
            values[name] = self._refs(where, field, value, planned)
        return values

    def _refs(self, where, field, value, planned):
        if isinstance(field, f.Ref) and value is not None:
            return self._ref(where, field, value, planned)
        if isinstance(field, f.List) and isinstance(field.item, f.Ref) and \
                isinstance(value, list):
            return [self._ref(where, field.item, v, planned) for v in value]
        return value

    def _ref(self, where, field, ref, planned):
        found = self._find(field.table, ref)
        if found is not None:
            return found
        if (field.table, ref) in planned:
            return planned[(field.table, ref)]
        if field.enforced:
            raise errors.ValidationError(
                f'{where}: {field.name}: no {field.table} {ref!r} (neither '
                'stored nor earlier in the file)')
        return ref          # e.g. a binding chassis not registered yet

    def plan(self, items):
        """[(kind, [write])] runs of writes in file order; counts."""
        runs, counts = [], {'created': 0, 'updated': 0, 'unchanged': 0}
        planned = {}        # (table, name or id) -> id of a planned create
        for index, item in enumerate(items, 1):
            kind = item.get('kind')
            model = self.models.get(kind)
            where = f'object {index}' + (f' ({kind})' if kind else '')
            if model is None:
                raise errors.ValidationError(
                    f'{where}: unknown kind {kind!r} (one of '
                    f'{", ".join(sorted(self.models))})')
            try:
                values = self._fields(where, model, item, planned)
                model.from_dict(dict(values), model.table)
            except errors.ValidationError as e:
                if str(e).startswith(where):
                    raise
                raise errors.ValidationError(f'{where}: {e}') from None
            ref = values.get('id') or values.get('name')
            if not ref:
                raise errors.ValidationError(
                    f'{where}: give an id or a name (how apply finds it '
                    'again)')
            existing = self._find(model.table, ref)
            if existing is None:
                if (model.table, ref) in planned:
                    raise errors.ValidationError(
                        f'{where}: {kind} {ref!r} appears twice in the file')
                values.setdefault('id', f.new_id())
                planned[(model.table, ref)] = values['id']
                write = ('create', model.table, values)
                counts['created'] += 1
            else:
                current = self._existing(model.table)[existing].to_dict()
                changed = {k: v for k, v in values.items()
                           if k != 'id' and not _same(model, k, v,
                                                      current.get(k))}
                if not changed:
                    counts['unchanged'] += 1
                    continue
                write = ('patch', model.table, existing, changed)
                counts['updated'] += 1
            if runs and runs[-1][0] == model.table:
                runs[-1][1].append((where, write))
            else:
                runs.append((model.table, [(where, write)]))
        return runs, counts

    def apply(self, items):
        """Write what differs; the counts of created, updated, unchanged."""
        runs, counts = self.plan(items)
        for _, writes in runs:
            try:
                for obj in self.nb.write_many([w for _, w in writes]):
                    self._remember(obj)
            except errors.NbError as e:
                index = getattr(e, 'index', None)
                if index is not None:
                    e.args = (f'{writes[index][0]}: {e.detail}',)
                raise
        return counts


def _same(model, name, value, current):
    """Whether a given value equals the stored one (normalised by the
    field, so '10.0.0.5' and a parsed address compare equal)."""
    field = model.fields()[name]
    try:
        value = field.check(value, f'{model.table}.{name}')
    except errors.ValidationError:
        return False
    return value == current
