"""Typed fields for northbound models.

A field validates and normalises one value (``check``), parses it from a
command-line string (``parse``) and knows whether it refers to another NB
object (``refs``). Errors name the full path of the offending value, e.g.
``logical_port.allowed_address_pairs[1].mac_address``.
"""
import ipaddress
import json
import re
import uuid

from dragonflow.errors import ValidationError  # noqa: F401  (re-exported)


_MAC_RE = re.compile(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}$')
_ID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$')
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def new_id():
    return str(uuid.uuid4())


class Field:
    """Base field. ``default`` may be a callable producing a fresh value."""

    type_name = 'value'

    def __init__(self, *, required=False, default=None, immutable=False,
                 help=''):
        self.required = required
        self.default = default
        self.immutable = immutable
        self.help = help
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        """On the class, the field. A model instance keeps the values in
        its __dict__, which this non-data descriptor leaves to Python's
        own lookup (model/base.py): reached on an instance only when the
        value is missing."""
        if obj is None:
            return self
        raise AttributeError(
            f'{type(obj).__name__} has no value for {self.name!r}')

    def default_value(self):
        return self.default() if callable(self.default) else self.default

    def check(self, value, where):
        """Return the normalised value or raise ValidationError."""
        if value is None:
            return None
        return self._check(value, where)

    def _check(self, value, where):
        return value

    def parse(self, text, where):
        """Parse a command-line string into a value, then check it."""
        return self.check(text, where)

    def parse_item(self, text, where):
        """Parse one item of a list from text (List checks it again)."""
        return self.parse(text, where)

    def refs(self, value):
        """Yield (table, id, enforced) for every reference in value."""
        return ()

    def fail(self, where, what, value):
        raise ValidationError(f'{where}: {what}, got {shown(value)}')


SHOWN_MAX = 60      # characters of a bad value an error message repeats


def shown(value):
    """A value as an error message quotes it: its repr, cut after
    SHOWN_MAX characters with its length said (a 10 MB name must not come
    back as a 10 MB error line)."""
    text = repr(value)
    if len(text) <= SHOWN_MAX:
        return text
    size = f'{len(value)} characters' if isinstance(value, str) else \
        f'{len(text)} characters as text'
    return f'{text[:SHOWN_MAX]}... ({size})'


class String(Field):
    type_name = 'string'

    def __init__(self, *, max_length=255, pattern=None, **kw):
        super().__init__(**kw)
        self.max_length = max_length
        self.pattern = re.compile(pattern) if pattern else None

    def _check(self, value, where):
        if not isinstance(value, str):
            self.fail(where, 'must be a string', value)
        if len(value) > self.max_length:
            self.fail(where, f'longer than {self.max_length} characters',
                      value)
        if _CONTROL_RE.search(value):
            # A newline would split a row of `dfctl ... list`.
            self.fail(where, 'must not contain control characters '
                      '(newline, tab, ...)', value)
        if self.pattern and not self.pattern.match(value):
            self.fail(where, f'does not match {self.pattern.pattern}', value)
        return value


def is_id(value):
    """Whether value can be an object id at all (anything else, e.g. a name
    like ``..`` given where an id or a name is expected, names nothing)."""
    return isinstance(value, str) and bool(_ID_RE.match(value))


class Id(String):
    """An object id: uuid-like or a name-safe token (usable as a znode)."""

    type_name = 'id'

    def __init__(self, **kw):
        super().__init__(max_length=128, **kw)

    def _check(self, value, where):
        value = super()._check(value, where)
        if not _ID_RE.match(value):
            self.fail(where, 'is not a valid id (letters, digits, _ . : @ -)',
                      value)
        return value


class Integer(Field):
    type_name = 'integer'

    def __init__(self, *, min=None, max=None, **kw):
        super().__init__(**kw)
        self.min, self.max = min, max

    def _check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, 'must be an integer', value)
        if self.min is not None and value < self.min:
            self.fail(where, f'must be >= {self.min}', value)
        if self.max is not None and value > self.max:
            self.fail(where, f'must be <= {self.max}', value)
        return value

    def parse(self, text, where):
        try:
            return self.check(int(text, 0), where)
        except (TypeError, ValueError) as e:
            if isinstance(e, ValidationError):
                raise
            self.fail(where, 'must be an integer', text)


class Number(Field):
    type_name = 'number'

    def _check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(where, 'must be a number', value)
        return float(value)

    def parse(self, text, where):
        try:
            return self.check(float(text), where)
        except ValueError:
            self.fail(where, 'must be a number', text)


class Boolean(Field):
    type_name = 'boolean'
    _WORDS = {'true': True, 'yes': True, '1': True, 'on': True,
              'false': False, 'no': False, '0': False, 'off': False}

    def _check(self, value, where):
        if not isinstance(value, bool):
            self.fail(where, 'must be true or false', value)
        return value

    def parse(self, text, where):
        try:
            return self._WORDS[text.strip().lower()]
        except KeyError:
            self.fail(where, 'must be true or false', text)


class Enum(Field):
    type_name = 'enum'

    def __init__(self, *values, **kw):
        super().__init__(**kw)
        self.values = values

    def _check(self, value, where):
        if value not in self.values:
            self.fail(where, f'must be one of {", ".join(map(str, self.values))}',
                      value)
        return value


class IpAddress(Field):
    """An IPv4 or IPv6 address, normalised to its compressed form."""

    type_name = 'ip address'

    def __init__(self, *, version=None, **kw):
        super().__init__(**kw)
        self.version = version

    def _check(self, value, where):
        try:
            addr = ipaddress.ip_address(value)
        except (TypeError, ValueError):
            self.fail(where, 'is not a valid IP address', value)
        if self.version and addr.version != self.version:
            self.fail(where, f'must be an IPv{self.version} address', value)
        return str(addr)


class IpNetwork(Field):
    """A CIDR. ``strict`` refuses host bits (10.0.0.1/24)."""

    type_name = 'cidr'

    def __init__(self, *, version=None, strict=True, **kw):
        super().__init__(**kw)
        self.version = version
        self.strict = strict

    def _check(self, value, where):
        try:
            net = ipaddress.ip_network(value, strict=self.strict)
        except (TypeError, ValueError):
            self.fail(where, _cidr_problem(value), value)
        if self.version and net.version != self.version:
            self.fail(where, f'must be an IPv{self.version} CIDR', value)
        return str(net)


def _cidr_problem(value):
    """What is wrong with a CIDR ipaddress refused, in words."""
    if not isinstance(value, str):
        return 'is not a valid CIDR'
    address, slash, prefix = value.partition('/')
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return 'is not a valid CIDR (the address part is not an address)'
    if slash and not prefix.isdigit():
        return 'is not a valid CIDR (the prefix length is not a number)'
    if slash and int(prefix) > addr.max_prefixlen:
        return (f'is not a valid CIDR (prefix length {int(prefix)} is out of '
                f'range for IPv{addr.version}: 0-{addr.max_prefixlen})')
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return 'is not a valid CIDR'
    return f'is not a valid CIDR (host bits set: the network is {net})'


class IpAddressOrNetwork(Field):
    """An address (stored as is) or a CIDR (as for allowed address pairs)."""

    type_name = 'ip address or cidr'

    def _check(self, value, where):
        if isinstance(value, str) and '/' in value:
            return IpNetwork(strict=True)._check(value, where)
        return IpAddress()._check(value, where)


class MacAddress(Field):
    type_name = 'mac address'

    def _check(self, value, where):
        if not isinstance(value, str) or not _MAC_RE.match(value.lower()):
            self.fail(where, 'is not a valid MAC address (aa:bb:cc:dd:ee:ff)',
                      value)
        mac = value.lower()
        if int(mac[:2], 16) & 1:
            self.fail(where, 'must be a unicast MAC address', value)
        return mac


class Ref(Id):
    """The id of an object in another table.

    ``enforced`` references keep the target from being deleted while
    referenced, and refuse a write whose target does not exist.
    ``on_delete='clear'``: deleting the target clears this reference instead
    of being refused (a floating IP loses its port).
    """

    type_name = 'reference'

    def __init__(self, table, *, enforced=True, on_delete='restrict', **kw):
        super().__init__(**kw)
        self.table = table
        self.enforced = enforced
        self.on_delete = on_delete

    def refs(self, value):
        if value is not None:
            yield self.table, value, self.enforced


class List(Field):
    """A list of items of one field type. On the command line: a, b, c."""

    type_name = 'list'

    def __init__(self, item, *, unique=True, max_items=4096, **kw):
        kw.setdefault('default', list)
        super().__init__(**kw)
        self.item = item
        self.unique = unique
        self.max_items = max_items

    def _check(self, value, where):
        if not isinstance(value, (list, tuple)):
            self.fail(where, 'must be a list', value)
        if len(value) > self.max_items:
            self.fail(where, f'has more than {self.max_items} items',
                      len(value))
        out = [self.item.check(v, f'{where}[{i}]') for i, v in enumerate(value)]
        if any(v is None for v in out):
            self.fail(where, 'must not contain null', value)
        if self.unique:
            seen = set()
            for v in out:
                key = json.dumps(v, sort_keys=True)
                if key in seen:
                    self.fail(where, 'has a duplicate item', v)
                seen.add(key)
        return out

    def parse(self, text, where):
        """Accepts a JSON list, or comma-separated items ('' is empty)."""
        text = text.strip()
        if text.startswith('['):
            try:
                return self.check(json.loads(text), where)
            except json.JSONDecodeError:
                self.fail(where, 'is not a valid JSON list', text)
        if isinstance(self.item, Nested):
            # Struct items are separated by ';' since their keys use ','.
            parts = [p for p in text.split(';') if p.strip()]
        else:
            parts = [p.strip() for p in text.split(',') if p.strip()]
        return self.check([self.item.parse_item(p, f'{where}[{i}]')
                           for i, p in enumerate(parts)], where)

    def refs(self, value):
        for v in value or ():
            yield from self.item.refs(v)


class Nested(Field):
    """A nested structure (a Struct subclass), stored as a JSON object.

    On the command line: key=value,key=value or a JSON object.
    """

    type_name = 'object'

    def __init__(self, struct, **kw):
        super().__init__(**kw)
        self.struct = struct

    def _check(self, value, where):
        if isinstance(value, self.struct):
            value = value.to_dict()
        return self.struct.from_dict(value, where).to_dict()

    def parse(self, text, where):
        return self.check(self.parse_item(text, where), where)

    def parse_item(self, text, where):
        text = text.strip()
        if text.startswith('{'):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                self.fail(where, 'is not a valid JSON object', text)
        out = {}
        for pair in filter(None, (p.strip() for p in text.split(','))):
            key, sep, val = pair.partition('=')
            key = key.strip().replace('-', '_')
            field = self.struct.fields().get(key)
            if not sep or field is None:
                self.fail(where, 'expects key=value pairs with keys '
                          f'{", ".join(self.struct.fields())}', pair)
            out[key] = field.parse(val.strip(), f'{where}.{key}')
        return out

    def refs(self, value):
        if value is None:
            return
        for name, field in self.struct.fields().items():
            yield from field.refs(value.get(name))
