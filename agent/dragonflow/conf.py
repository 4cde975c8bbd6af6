"""Configuration options (oslo.config), shared by every daemon and dfctl.

Files: ``/etc/dragonflow/dragonflow.ini`` and ``/etc/dragonflow/
dragonflow.ini.d/*.ini`` when present, else ``--config-file``/``--config-dir``.
Every option can also come from the environment as ``OS_<GROUP>__<OPTION>``,
e.g. ``OS_DF__REMOTE_DB_HOSTS=10.0.0.5:2181``.
"""
import os

from oslo_config import cfg

DEFAULT_CONFIG_FILE = '/etc/dragonflow/dragonflow.ini'
DEFAULT_CONFIG_DIR = '/etc/dragonflow/dragonflow.ini.d'

df_opts = [
    cfg.ListOpt('remote_db_hosts', default=['127.0.0.1:2181'],
                help='ZooKeeper servers, host:port, comma separated'),
    cfg.BoolOpt('remote_db_hosts_in_order', default=False,
                help='Connect to remote_db_hosts in the order given (the '
                     'next one only when the previous is unreachable) '
                     'instead of a random one: put this chassis\' nearest '
                     'ZooKeeper server (typically an observer) first, so '
                     'that reads and watches spread over the observers '
                     'and not over the quorum.'),
    cfg.StrOpt('nb_root', default='/dragonflow',
               help='ZooKeeper path under which all Dragonflow data lives; '
                    'objects are at <nb_root>/nb/<table>/<id>'),
    cfg.FloatOpt('zk_session_timeout', default=10.0, min=2.0,
                 help='ZooKeeper session timeout (seconds); ephemeral '
                      'presence of a crashed daemon vanishes after it'),
    cfg.FloatOpt('zk_connect_timeout', default=5.0, min=0.1,
                 help='give up connecting to ZooKeeper after this many '
                      'seconds (dfctl fails with a clear error then)'),
    cfg.StrOpt('zk_auth', secret=True,
               help='digest credentials user:password; when set, everything '
                    'written carries an ACL giving all rights to this user '
                    'only (see zk_world_readable)'),
    cfg.BoolOpt('zk_world_readable', default=True,
                help='with zk_auth: let unauthenticated clients read'),
    cfg.BoolOpt('zk_use_ssl', default=False, help='connect with TLS'),
    cfg.StrOpt('zk_ca', help='CA bundle to verify the servers (TLS)'),
    cfg.StrOpt('zk_certfile', help='client certificate (TLS)'),
    cfg.StrOpt('zk_keyfile', help='client key (TLS)'),
    cfg.IntOpt('changelog_max_entries', default=10000, min=100,
               help='change log entries kept, in the global log and in each '
                    'topic feed; older ones are trimmed and a subscriber '
                    'that had not read them does a full resync'),
    cfg.FloatOpt('changelog_retention', default=3600.0, min=1.0,
                 help='change log entries older than this (seconds) are '
                      'trimmed'),
    cfg.FloatOpt('report_interval', default=25.0, min=0.1,
                 help='seconds between service heartbeats'),
    cfg.FloatOpt('service_down_time', default=80.0, min=0.1,
                 help='a service whose last heartbeat is older than this '
                      '(seconds) is reported down'),
    cfg.StrOpt('host', default=os.uname().nodename,
               help='host name reported by services'),
]

controller_opts = [
    cfg.StrOpt('local_ip', help='this chassis\' tunnel endpoint (underlay) '
               'address; required by df-local-controller'),
    cfg.ListOpt('tunnel_types', default=['geneve', 'vxlan'],
                help='tunnel types this chassis terminates (geneve, vxlan)'),
    cfg.StrOpt('integration_bridge', default='br-int',
               help='the OVS bridge the controller programs'),
    cfg.StrOpt('datapath_type', default='system',
               choices=['system', 'netdev'],
               help='OVS datapath of the integration bridge (netdev: the '
                    'userspace datapath, for hosts without the kernel '
                    'module)'),
    cfg.ListOpt('apps_list', default=['classifier', 'port_security',
                                      'arp_responder', 'dhcp', 'l2',
                                      'tunneling', 'l3', 'security_groups',
                                      'provider', 'nat', 'router_icmp',
                                      'nd_responder', 'router_advertisement',
                                      'sfc', 'dhcpv6', 'lb', 'fwaas', 'tap',
                                      'multicast'],
                help='controller apps to run'),
    cfg.StrOpt('ovsdb_connection', default='unix:/var/run/openvswitch/db.sock',
               help='OVSDB server of the local Open vSwitch'),
    cfg.StrOpt('vswitchd_unixctl',
               help='ovs-vswitchd control socket for ovs-appctl -t (physical '
                    'traces run ofproto/trace there); ovs-appctl\'s default '
                    '(the pidfile in OVS_RUNDIR) if unset'),
    cfg.BoolOpt('tunnel_bfd', default=True,
                help='run BFD to every other chassis on BFD-only tunnel '
                     'ports (dfctl check reports sessions not up)'),
    cfg.PortOpt('bfd_udp_port', default=6082,
                help='UDP port of the BFD-only Geneve ports (not the data '
                     'tunnels\' port, so no data traffic lands on them)'),
    cfg.StrOpt('metrics_address', default='127.0.0.1',
               help='address the daemons serve Prometheus /metrics on '
                    '(localhost only by default)'),
    cfg.PortOpt('metrics_port', default=9110,
                help='df-local-controller\'s /metrics port; 0: no metrics'),
    cfg.StrOpt('of_listen_address', default='127.0.0.1',
               help='address the OpenFlow controller listens on'),
    cfg.PortOpt('of_listen_port', default=6653,
                help='port the OpenFlow controller listens on'),
    cfg.StrOpt('chassis_id',
               help='chassis id; the OVS system-id when unset'),
    cfg.IntOpt('packet_in_rate_limit', default=100, min=100,
               help='packets per second Open vSwitch sends to this '
                    'controller at most (DHCP, ICMP errors, ARP replies); '
                    'the excess is dropped in the switch'),
    cfg.IntOpt('packet_in_burst_limit', default=25, min=25,
               help='packets Open vSwitch may send above the rate in a '
                    'burst'),
    cfg.StrOpt('external_host_ip',
               help='address of this chassis used for distributed SNAT'),
    cfg.BoolOpt('check_pipeline', default=True,
                help='hold every new flow against the declared pipeline '
                     '(its stage exists, the app is one of its writers, it '
                     'goes on only to declared next stages) and refuse one '
                     'that breaks it, logging an error that names the app '
                     'and the stage; cheap (see bench/controller_bench.py)'),
]

provider_opts = [
    cfg.ListOpt('bridge_mappings', default=[],
                help='physical networks this chassis reaches, as '
                     'physnet:bridge pairs (e.g. physnet1:br-ex); the agent '
                     'wires each existing bridge to the integration bridge '
                     'with a patch port'),
]

CONF = cfg.CONF


def register_opts(conf=CONF):
    conf.register_opts(df_opts, group='df')
    conf.register_opts(controller_opts, group='df')
    conf.register_opts(provider_opts, group='df_provider_networks')


def bridge_mappings(values):
    """{physnet: bridge} from physnet:bridge strings; ValueError naming
    the bad entry."""
    out = {}
    for value in values:
        physnet, sep, bridge = value.partition(':')
        physnet, bridge = physnet.strip(), bridge.strip()
        if not sep or not physnet or not bridge or ':' in bridge:
            raise ValueError(f'bridge_mappings: {value!r} is not '
                             'physnet:bridge')
        if physnet in out:
            raise ValueError(f'bridge_mappings: {physnet} is mapped twice')
        if bridge in out.values():
            raise ValueError(f'bridge_mappings: bridge {bridge} is mapped '
                             'twice')
        out[physnet] = bridge
    return out


def load(argv, conf=CONF, prog=None, description=None):
    """Parse argv and the config files into conf; returns conf."""
    register_opts(conf)
    files = [DEFAULT_CONFIG_FILE] if os.path.exists(DEFAULT_CONFIG_FILE) \
        else []
    dirs = [DEFAULT_CONFIG_DIR] if os.path.isdir(DEFAULT_CONFIG_DIR) else []
    conf(argv, project='dragonflow', prog=prog, description=description,
         default_config_files=files, default_config_dirs=dirs)
    return conf
