"""Declarative NB models: a class of typed fields, one ZooKeeper table each.

A new object kind is one new module in this package: declare a ``Model``
subclass with ``@register`` and the store, the NB API, the change stream and
``dfctl`` pick it up. Hooks a model may override, in the order the NB API
calls them on a write:

``prepare(view)``         fill derived or allocated values (MACs, IPs, keys)
``validate()``            checks within the object (gateway inside cidr)
``check_in_store(view, old)``  checks against other NB objects (IP in a subnet
                          of the network, FIP network is external)
``unique_keys()``         ``(index, key)`` pairs that must be unique NB-wide;
                          the store enforces them atomically with the write
``guards()``              ``(table, id)`` of objects whose write must be
                          serialised with this one (subnet overlap checks)
``create_plan(view)``     objects created with it, in one transaction
``owned()``               objects deleted with it, in one transaction
"""
import copy
import json

from dragonflow.model import fields as f

_TABLES = {}


def register(cls):
    """Class decorator: make a model known to the store, API and CLI."""
    if cls.table in _TABLES and _TABLES[cls.table] is not cls:
        raise RuntimeError(f'table {cls.table} registered twice')
    _TABLES[cls.table] = cls
    return cls


def tables():
    """All registered models by table name."""
    from dragonflow import model  # noqa: F401  (imports every model module)
    return dict(_TABLES)


def model_for(table):
    try:
        return tables()[table]
    except KeyError:
        raise f.ValidationError(f'unknown table {table!r}') from None


class Struct:
    """A set of typed fields with validation and JSON (de)serialisation."""

    # Field values live in the instance's own __dict__: a Field is a
    # non-data descriptor, so reading one (the hot path of flow
    # computation: every port's binding, id and addresses, per change) is
    # a plain attribute lookup, not a Python call. Writes go through
    # __setattr__ (validated).

    def __init__(self, **values):
        where = getattr(self, 'table', type(self).__name__.lower())
        known = self.fields()
        for name in values:
            if name not in known:
                raise f.ValidationError(f'{where}: unknown field {name!r}')
        checked = {}
        for name, field in known.items():
            value = values.get(name)
            if value is None:
                value = field.default_value()
            checked[name] = field.check(value, f'{where}.{name}')
        for name, field in known.items():
            if field.required and checked[name] in (None, '', []):
                raise f.ValidationError(f'{where}.{name}: is required')
        self.__dict__.update(checked)

    @classmethod
    def fields(cls):
        cached = cls.__dict__.get('_fields')
        if cached is None:
            cached = {}
            for klass in reversed(cls.__mro__):
                for name, value in vars(klass).items():
                    if isinstance(value, f.Field):
                        cached[name] = value
            cls._fields = cached
        return cached

    def __setattr__(self, name, value):
        if name.startswith('_'):
            object.__setattr__(self, name, value)
            return
        field = self.fields().get(name)
        if field is None:
            object.__setattr__(self, name, value)
            return
        where = getattr(self, 'table', type(self).__name__.lower())
        self.__dict__[name] = field.check(value, f'{where}.{name}')

    @classmethod
    def from_dict(cls, data, where=None):
        if not isinstance(data, dict):
            raise f.ValidationError(
                f'{where or cls.__name__}: must be an object, got {data!r}')
        try:
            return cls(**data)
        except TypeError as e:
            raise f.ValidationError(f'{where or cls.__name__}: {e}') from None
        except f.ValidationError as e:
            if where:
                prefix = getattr(cls, 'table', cls.__name__.lower())
                msg = str(e)
                if msg.startswith(prefix):
                    msg = where + msg[len(prefix):]
                raise f.ValidationError(msg) from None
            raise

    def to_dict(self):
        values = self.__dict__
        return {k: _copied(values[k]) for k in self.fields()
                if values[k] is not None}

    def __eq__(self, other):
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f'{type(self).__name__}({self.to_dict()!r})'


_SCALARS = (str, int, float, bool)


def encode(data):
    """An object's stored body: its to_dict() as compact, sorted JSON."""
    return json.dumps(data, sort_keys=True, separators=(',', ':')).encode()


def _copied(value):
    """A deep copy of a field value (copy.deepcopy's dispatch, for the
    plain values fields hold, cost more than the rest of a bulk create's
    validation)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        return [_copied(v) for v in value]
    if kind is dict:
        return {k: _copied(v) for k, v in value.items()}
    return copy.deepcopy(value)


class Model(Struct):
    """An NB object: one znode ``<root>/nb/<table>/<id>``.

    ``version`` is the znode version, not part of the stored body: it is set
    by the store on read and checked on update (compare-and-set).
    """

    table = None           # the ZooKeeper table name
    cli_name = None        # dfctl resource name; None hides it from dfctl
    cli_columns = ('id', 'name')

    # Distribution: an object goes to the feed of its topic, or, when
    # ``feed_with`` names an immutable reference, to the feed of the topic
    # of the object it refers to (a port is seen by every chassis with a
    # port on its network, whichever tenant owns it).
    feed_with = None

    id = f.Id(default=f.new_id, immutable=True, help='object id (uuid)')
    topic = f.String(max_length=128, default='', immutable=True,
                     help='tenant/project the object belongs to')

    def __init__(self, version=None, **values):
        super().__init__(**values)
        self._version = version

    @property
    def version(self):
        return self._version

    @classmethod
    def from_json(cls, raw, version=None):
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise f.ValidationError(
                f'{cls.table}: stored body is not JSON') from None
        obj = cls.from_dict(data, cls.table)
        obj._version = version
        return obj

    def to_json(self):
        return encode(self.to_dict())

    def to_api(self):
        """The object as shown to users: body plus version."""
        d = self.to_dict()
        d['version'] = self._version
        return d

    def references(self):
        """(table, id, enforced) for every reference this object holds."""
        return [tuple(ref) for _, *ref in self.field_references()]

    def field_references(self):
        """(field, table, id, enforced) for every reference (not to itself)."""
        out = []
        for name, field in self.fields().items():
            for table, ref_id, enforced in field.refs(self.__dict__[name]):
                if (table, ref_id) != (self.table, self.id):
                    out.append((name, table, ref_id, enforced))
        return out

    def feed_topic(self, view):
        """The topic whose feed distributes this object."""
        if self.feed_with is not None:
            field = self.fields()[self.feed_with]
            target = view.get(field.table, getattr(self, self.feed_with))
            if target is not None:
                return target.topic
        return self.topic

    # Hooks, see the module docstring.
    def prepare(self, view):
        pass

    def validate(self):
        pass

    def check_in_store(self, view, old):
        pass

    def unique_keys(self):
        return ()

    def guards(self):
        return ()

    def create_plan(self, view):
        """None, or the writes creating this object with others it comes
        with, in one transaction: ``('create', table, data)`` in order (a
        load balancer's VIP port, then the load balancer)."""
        return None

    def owned(self):
        """(table, id) of objects deleted with this one, in the same
        transaction (a load balancer's VIP port)."""
        return []

    def mark_allocated(self, index):
        """Record that a unique key of ``index`` was chosen by prepare(), not
        by the user: a conflict on it makes the store choose again instead of
        failing the write."""
        allocated = getattr(self, '_allocated', set())
        allocated.add(index)
        self._allocated = allocated

    def allocated(self):
        return getattr(self, '_allocated', set())

    def fail(self, field, message):
        raise f.ValidationError(f'{self.table}.{field}: {message}')
