"""The CNI protocol as the spec (1.0.0) defines it: the command and its
arguments in environment variables, the network configuration as JSON
on stdin, a result or an error as JSON on stdout.

Unknown configuration fields are ignored (the spec lets runtimes and
other plugins add theirs); a known field of the wrong type is an error
naming it. Errors carry the spec's codes: 1 incompatible version, 4
invalid environment, 5 I/O failure, 6 decoding failure, 7 invalid network
configuration, 11 try again later (the plugin's own wait ran out, or
ZooKeeper is unreachable), 3 unknown container (CHECK of a container
without a port), 100 anything unexpected; the message names what is
wrong.
"""
import ipaddress
import json

SUPPORTED_VERSIONS = ('0.4.0', '1.0.0')
INCOMPATIBLE_VERSION, INVALID_ENV, IO_FAILURE, DECODE_FAILURE, \
    INVALID_CONFIG, TRY_AGAIN = 1, 4, 5, 6, 7, 11
UNKNOWN_CONTAINER = 3
INTERNAL = 100          # plugin-specific codes start at 100
COMMANDS = ('ADD', 'DEL', 'CHECK', 'VERSION')
# Our fields and what they must be.
FIELDS = {'cniVersion': str, 'name': str, 'type': str, 'network': str,
          'subnet': str, 'security_groups': list, 'zookeeper': str,
          'config_file': str, 'mtu': int, 'timeout': (int, float),
          'bridge': str}
DEFAULT_CONFIG_FILE = '/etc/dragonflow/dragonflow.ini'
DEFAULT_TIMEOUT = 30.0


class CniError(Exception):
    """An error the runtime gets as the spec's error JSON."""

    def __init__(self, code, msg, details=''):
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details

    def to_dict(self, version):
        out = {'cniVersion': version, 'code': self.code, 'msg': self.msg}
        if self.details:
            out['details'] = self.details
        return out


class Request:
    """One invocation: command, container, netns, interface name, args
    (``K8S_POD_NAMESPACE``, ``K8S_POD_NAME``, ``IP``) and the config."""

    def __init__(self, environ, stdin):
        self.command = environ.get('CNI_COMMAND', '')
        if self.command not in COMMANDS:
            raise CniError(INVALID_ENV, f'CNI_COMMAND: {self.command!r} is '
                           f'not one of {", ".join(COMMANDS)}')
        self.config = {} if self.command == 'VERSION' else \
            parse_config(stdin)
        self.version = self.config.get('cniVersion', '1.0.0')
        self.container_id = environ.get('CNI_CONTAINERID', '')
        self.netns = environ.get('CNI_NETNS', '')
        self.ifname = environ.get('CNI_IFNAME', '')
        self.args = parse_args(environ.get('CNI_ARGS', ''))
        if self.command == 'VERSION':
            return
        for name, value in (('CNI_CONTAINERID', self.container_id),
                            ('CNI_IFNAME', self.ifname)):
            if not value:
                raise CniError(INVALID_ENV, f'{name} is not set')
        if self.command in ('ADD', 'CHECK') and not self.netns:
            raise CniError(INVALID_ENV, 'CNI_NETNS is not set')
        if len(self.ifname) > 15 or '/' in self.ifname:
            raise CniError(INVALID_ENV, f'CNI_IFNAME: {self.ifname!r} is '
                           'not an interface name')
        requested = self.args.get('IP')
        if requested is not None:
            try:
                ipaddress.ip_address(requested)
            except ValueError:
                raise CniError(INVALID_ENV, f'CNI_ARGS: IP={requested} is '
                               'not an IP address') from None

    @property
    def timeout(self):
        return float(self.config.get('timeout', DEFAULT_TIMEOUT))


def parse_args(text):
    """CNI_ARGS ``K=V;K2=V2`` as a dict; a part without = is an error."""
    out = {}
    for part in filter(None, text.split(';')):
        key, sep, value = part.partition('=')
        if not sep or not key:
            raise CniError(INVALID_ENV, f'CNI_ARGS: {part!r} is not K=V')
        out[key] = value
    return out


def parse_config(stdin):
    try:
        config = json.loads(stdin or b'')
    except ValueError as e:
        raise CniError(DECODE_FAILURE, f'network configuration is not JSON: '
                       f'{e}') from None
    if not isinstance(config, dict):
        raise CniError(DECODE_FAILURE, 'network configuration is not a JSON '
                       'object')
    for name, kind in FIELDS.items():
        if name in config and (not isinstance(config[name], kind) or
                               isinstance(config[name], bool)):
            raise CniError(INVALID_CONFIG, f'{name}: {config[name]!r} is '
                           f'not {_kind_name(kind)}')
    version = config.get('cniVersion')
    if version not in SUPPORTED_VERSIONS:
        raise CniError(INCOMPATIBLE_VERSION, f'cniVersion {version!r} is not '
                       f'supported ({", ".join(SUPPORTED_VERSIONS)})')
    if not config.get('network'):
        raise CniError(INVALID_CONFIG, 'network: is required (a Dragonflow '
                       'network id or name)')
    if any(not isinstance(g, str) for g in config.get('security_groups', [])):
        raise CniError(INVALID_CONFIG, 'security_groups: must be a list of '
                       'ids or names')
    if 'mtu' in config and not 68 <= config['mtu'] <= 9216:
        raise CniError(INVALID_CONFIG, f'mtu: {config["mtu"]} is out of '
                       'range 68..9216')
    return config


def _kind_name(kind):
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: 'a string', list: 'a list', int: 'an integer',
             float: 'a number', dict: 'an object'}
    return ' or '.join(names[k] for k in kinds)


def result(version, ifname, mac, sandbox, addresses, routes, dns):
    """The ADD result: one interface (the container's), its addresses
    ([(cidr, gateway or None)]), routes ([(dst, gw)]) and DNS servers."""
    ips = []
    for cidr, gateway in addresses:
        ip = {'address': cidr, 'interface': 0}
        if gateway:
            ip['gateway'] = gateway
        if version == '0.4.0':
            ip['version'] = str(ipaddress.ip_interface(cidr).version)
        ips.append(ip)
    out = {'cniVersion': version,
           'interfaces': [{'name': ifname, 'mac': mac, 'sandbox': sandbox}],
           'ips': ips,
           'routes': [{'dst': dst, 'gw': gw} for dst, gw in routes]}
    if dns:
        out['dns'] = {'nameservers': list(dns)}
    return out


def version_info():
    return {'cniVersion': SUPPORTED_VERSIONS[-1],
            'supportedVersions': list(SUPPORTED_VERSIONS)}
