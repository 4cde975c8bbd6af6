"""Controller apps. Each app is one module with one class: it has one
cookie, writes flows only in the stages the pipeline declares it a writer
of (``controller/pipeline.py``, which also says which stages it owns), and
computes its flows from the local state as plain data. Apps are enabled by
``[df] apps_list``.

Packet-ins go to the app whose flow sent them (its cookie) and to the
handler it declares for that table in ``packet_ins``; packet-ins the
switch raises by itself (an expired TTL) go to the one app declaring the
reason in ``switch_packet_ins`` (see ``controller/packet_in.py``).

Two L2 modes: the full set switches itself (``l2`` and the apps around it
own the whole pipeline); the L3 flavour runs ``l2_normal`` instead, which
hands everything the routing/NAT apps do not claim to the bridge's NORMAL
action (or another L2 agent), and apps that steer traffic from outside
then add table-0 flows for exactly what they handle (``self.l2_normal``).
"""
import importlib

from dragonflow.controller import flows as fl
from dragonflow.controller import pipeline as pl

APP_MODULES = {
    'classifier': 'dragonflow.controller.apps.classifier',
    'port_security': 'dragonflow.controller.apps.port_security',
    'arp_responder': 'dragonflow.controller.apps.arp_responder',
    'dhcp': 'dragonflow.controller.apps.dhcp',
    'l2': 'dragonflow.controller.apps.l2',
    'tunneling': 'dragonflow.controller.apps.tunneling',
    'l3': 'dragonflow.controller.apps.l3',
    'security_groups': 'dragonflow.controller.apps.security_groups',
    'provider': 'dragonflow.controller.apps.provider',
    'nat': 'dragonflow.controller.apps.nat',
    'router_icmp': 'dragonflow.controller.apps.router_icmp',
    'l2_normal': 'dragonflow.controller.apps.l2_normal',
    'nd_responder': 'dragonflow.controller.apps.nd_responder',
    'router_advertisement':
        'dragonflow.controller.apps.router_advertisement',
    'sfc': 'dragonflow.controller.apps.sfc',
    'dhcpv6': 'dragonflow.controller.apps.dhcpv6',
    'lb': 'dragonflow.controller.apps.lb',
    'fwaas': 'dragonflow.controller.apps.fwaas',
    'tap': 'dragonflow.controller.apps.tap',
    'multicast': 'dragonflow.controller.apps.multicast',
}
# Apps that are the L2 pipeline of the full set: not with l2_normal.
OWN_L2 = ('classifier', 'port_security', 'arp_responder', 'dhcp', 'l2',
          'tunneling', 'security_groups', 'nd_responder',
          'router_advertisement', 'sfc', 'dhcpv6', 'lb', 'fwaas', 'tap',
          'multicast')
L3_FLAVOUR = ('l2_normal', 'l3', 'router_icmp', 'provider', 'nat')


class App:
    """Base of controller apps."""

    name = None
    cookie = None          # 1..255, unique per app
    # {table: method name}: packet-ins sent by this app's own flows in that
    # table (controller action), handled as method(state, msg, send_packet)
    packet_ins = {}
    # {OpenFlow packet-in reason: method name}: packet-ins the switch
    # raises itself, whatever flow was running (e.g. an expired TTL)
    switch_packet_ins = {}
    l2_normal = False      # set by load() for the L3 flavour

    def __init__(self, controller=None):
        self.controller = controller

    def global_flows(self, state):
        """Flows that do not depend on any network (table defaults)."""
        return []

    def network_flows(self, state, network):
        """Flows for one network this chassis programs that belong to the
        network as a whole (table defaults per network, the flood flow
        listing its ports, its router interfaces). A port's own flows go
        in :meth:`port_flows`: these are recomputed whenever one of the
        network's ports comes, goes or changes, so they must not build a
        flow per port (one flow listing them all is fine)."""
        return []

    def remote_port_shapes_network(self, state, port):
        """Whether this app's :meth:`network_flows` read anything of port
        (a port bound to another chassis, coming, going or changing) other
        than the chassis it is bound to. Which chassis have ports on a
        network (the flood list's tunnels) the controller follows itself;
        an app whose network flows list remote ports' addresses (address
        pairs, extra routes' next hops) says so here, and a remote port
        change then recomputes the network's shared flows. Otherwise it
        costs only its own flows, whatever the size of the network."""
        return False

    def tick(self, state, send_packet):
        """Called every few seconds by the main loop (e.g. to resolve a
        neighbour); send_packet(ofport, data) sends a packet out."""

    def port_flows(self, state, port):
        """Flows for one port of a network this chassis programs, on this
        chassis or another (``state.is_local``/``state.is_remote`` tell),
        that depend only on the port itself, its network and where it is
        (e.g. its L2 lookup entry, its port security, its security group
        rules): recomputed alone when only that port changes, so a change
        costs the same whatever the size of its network."""
        return []

    # Flows keyed by something other than a network or a port (e.g. a
    # security group's address set), so that what one change touches is
    # recomputed alone: keys are (app name, kind, id) tuples.
    def keys(self, state):
        """The keys of this app's keyed flows a chassis programs now."""
        return set()

    def key_flows(self, state, key):
        """The flows of one of this app's keys."""
        return []

    def touched_keys(self, state, table, obj, old):
        """This app's keys an NB object change (obj: new or None; old:
        before or None) touches; for a port, also its arrival on or
        departure from this chassis (obj and old the port)."""
        return set()

    def key(self, kind, key_id):
        return (self.name, kind, key_id)

    @staticmethod
    def flow(*args, **kwargs):
        return fl.Flow(*args, **kwargs)


class PassThroughApp(App):
    """Table-miss flows for the optional pipeline stages no enabled app
    owns, so packets go on to the next stage (always loaded)."""

    name = pl.PASS_THROUGH_APP
    cookie = 255

    def __init__(self, controller=None, tables=()):
        super().__init__(controller)
        self.tables = tuple(tables)

    def global_flows(self, state):
        return [self.flow(table, 0, goto=pl.PASS_THROUGH[table])
                for table in self.tables]


GLOBAL = '_global'      # flow table key of the apps' table defaults


def global_changes(apps, state):
    """Every app's table defaults, as flow table changes."""
    for app in apps:
        yield fl.Change(app.name, GLOBAL, app.global_flows(state))


def changes(apps, state, networks, ports, keys=None):
    """Every app's flows for these networks and ports, and the keyed
    flows of these keys, as flow table changes keyed by network id,
    ('port', port id) and the key. networks and ports map ids to objects,
    or to None for one no longer programmed here (its flows go); keys
    map keys to whether they are programmed."""
    for net_id, network in networks.items():
        for app in apps:
            yield fl.Change(app.name, net_id, [] if network is None else
                            app.network_flows(state, network))
    for port_id, port in ports.items():
        for app in apps:
            yield fl.Change(app.name, ('port', port_id), [] if port is None
                            else app.port_flows(state, port))
    by_name = {app.name: app for app in apps}
    for key, programmed in (keys or {}).items():
        app = by_name[key[0]]
        yield fl.Change(app.name, key, app.key_flows(state, key)
                        if programmed else [])


def programmed_keys(apps, state):
    """Every app's keys programmed now (a frozenset). When one app has
    keys, its own set, as it keeps it from one change to the next (no
    copy of a thousand keys per change)."""
    sets = [keys for keys in (app.keys(state) for app in apps) if keys]
    if len(sets) == 1:
        return frozenset(sets[0])       # a frozenset itself: no copy
    return frozenset().union(*sets)


def remote_port_shapes_network(apps, state, port):
    """Whether some app's network flows depend on this remote port."""
    return any(app.remote_port_shapes_network(state, port) for app in apps)


def touched_keys(apps, state, table, obj, old):
    out = set()
    for app in apps:
        out |= app.touched_keys(state, table, obj, old)
    return out


def load(names, controller=None):
    """The apps named in apps_list, plus the pass-through stages."""
    apps = []
    clash = sorted(set(names) & set(OWN_L2))
    if 'l2_normal' in names and clash:
        raise ValueError(f'l2_normal (the L3 flavour) cannot run with '
                         f'{", ".join(clash)}: those switch L2 themselves')
    if 'fwaas' in names and 'security_groups' not in names:
        raise ValueError('fwaas needs security_groups in apps_list: its '
                         'stages sit in their conntrack pass')
    for name in names:
        try:
            module = importlib.import_module(APP_MODULES[name])
        except KeyError:
            raise ValueError(f'unknown app {name!r} in apps_list (known: '
                             f'{", ".join(sorted(APP_MODULES))})') from None
        apps.append(module.APP(controller))
        apps[-1].l2_normal = 'l2_normal' in names
    cookies = [a.cookie for a in apps]
    if len(set(cookies)) != len(cookies):
        raise ValueError('two apps share a cookie')
    owned = pl.owners(names)
    apps.append(PassThroughApp(controller, sorted(
        set(pl.PASS_THROUGH) - set(owned))))
    return apps
