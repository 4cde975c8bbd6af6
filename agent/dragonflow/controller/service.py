"""df-local-controller: keeps this chassis' integration bridge in sync with
the NB model.

One main loop owns all state: NB changes (from the change stream), local
interface changes (from OVSDB) and switch connections arrive as events in
one inbox; each batch of events marks what it touches dirty, and only
those flows are recomputed (by every app) and diffed against what is
installed: a port's own flows (``App.port_flows``) when the port changes,
the flows of its network as a whole (``App.network_flows``: the flood
list, the chassis list) when a port comes, goes or moves, and everything
of a network only when the network itself (or a subnet, a router
interface) changes. So the work per change does not grow with the size of
the network.

Threads: os-ken (OpenFlow) runs its eventlet hub in the main thread; the
main loop is a green thread there too, so it can talk to the switch. The
NB subscriber (kazoo) and OVSDB (ovsdbapp) keep their own OS threads and
hand events over through an Inbox (a queue plus a wake-up pipe the hub
waits on). Nothing is monkey-patched: with Debian 12's eventlet and ovsdbapp a
patched process deadlocked in ovsdbapp's connection thread, and a socket
patch under kazoo's threads dropped its connection; keeping the two
worlds apart avoids both. Only the daemons' modules (and the Inbox they
share) touch eventlet.
"""
import collections
import concurrent.futures
import gc
import itertools
import logging
import sys
import time

from dragonflow import lean  # noqa: F401 (first: eventlet, leanly)
from dragonflow import lean_openflow  # noqa: F401 (then os-ken: 1.3 only)
from dragonflow import conf as df_conf
from dragonflow import daemon
from dragonflow import errors
from dragonflow import logs
from dragonflow import metrics
from dragonflow.controller import apps as df_apps
from dragonflow.controller import flowcodec
from dragonflow.controller import flowdump
from dragonflow.controller import flows as fl
from dragonflow.controller import lb_health
from dragonflow.controller import ofswitch
from dragonflow.controller import pipeline as pl
from dragonflow.controller import state as state_mod
from dragonflow.controller import tracer
from dragonflow.controller.apps import fwaas as fwaas_app
from dragonflow.controller.apps import lb as lb_app
from dragonflow.controller.apps import security_groups as sg_app
from dragonflow.controller.apps import tap as tap_app
from dragonflow.controller.bfd import BfdSessions
from dragonflow.controller.packet_in import PacketInRouter
from dragonflow.controller.selection import Selection
from dragonflow.controller.state import LocalState
from dragonflow.inbox import Inbox

# Named, not __name__: run as a module the daemon's logger would be
# '__main__'.
LOG = logging.getLogger('dragonflow.controller.service')
BINARY = 'df-local-controller'
FOLLOWED = ['chassis', 'logical_switch', 'subnet', 'logical_port',
            'logical_router', 'logical_router_port', 'security_group',
            'security_group_rule', 'floating_ip', 'trunk',
            'child_port_segmentation', 'port_pair', 'port_pair_group',
            'flow_classifier', 'port_chain', 'loadbalancer', 'listener',
            'pool', 'member', 'healthmonitor', 'firewall_rule',
            'firewall_policy', 'firewall_group', 'tap_service', 'tap_flow',
            'multicast_group']
TICK = 2.0          # seconds between App.tick calls
PACE = 500          # flow table changes computed between two pauses
SYNC_POLL = 0.02    # seconds between looks at the first NB sync (in the hub)
PREPARES = 3        # full syncs computed ahead per time without a switch
FLOW_METRICS_EVERY = 10.0   # seconds between two counts of the flow table
# How long a thread may hold the GIL while another waits for it (Python's
# default: 5 ms). The main loop computes flows while the binding writer,
# kazoo's and the IDL's threads wait to send or read one message each: at
# 5 ms a new port's binding took 4-11 ms to reach ZooKeeper, and the other
# chassis could not answer the port until it had.
SWITCH_INTERVAL = 0.0005


class Touched(collections.namedtuple(
        'Touched', 'networks shared ports keys claims moved full')):
    """What one input touches: ``networks`` whose flows to recompute, all
    of them (the network's and each of its ports'), networks whose
    ``shared`` flows only (``App.network_flows``) to recompute, ``ports``
    whose own flows (``App.port_flows``) to recompute, apps' ``keys``
    whose flows to recompute (``App.key_flows``), ports to ``claim`` if
    they are local, ports that ``moved`` (claim if local now, release if
    no longer), and ``full``: resynchronise the whole switch."""

    __slots__ = ()

    def __new__(cls, networks=(), shared=(), ports=(), keys=(), claims=(),
                moved=(), full=False):
        return super().__new__(cls, frozenset(networks), frozenset(shared),
                               frozenset(ports), frozenset(keys),
                               frozenset(claims), frozenset(moved), full)

    def __or__(self, other):
        return Touched(*(a | b for a, b in zip(self[:-1], other[:-1])),
                       full=self.full or other.full)


NOTHING = Touched()


class LocalController:
    def __init__(self, conf, nb, ovs, chassis_id):
        self.conf = conf
        self.nb = nb
        self.ovs = ovs
        self.state = LocalState(chassis_id)
        self.apps = df_apps.load(conf.df.apps_list, self)
        self.cookies = {app.name: app.cookie for app in self.apps}
        self.packet_ins = PacketInRouter(self.apps)
        self.installed = fl.FlowTable(
            check=pl.check if conf.df.check_pipeline else None)
        self.refused = 0            # flows refused since start
        self.inbox = Inbox()
        self.binding_writer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix='df-binding')
        self.datapath = None
        self.writer = None          # FlowWriter of the connected switch
        self.codec = flowcodec.FlowCodec()   # every connection's encoder
        # The next full sync computed ahead, while no switch is connected
        # (_prepare_full_sync): (generation, flow count, keyed flows);
        # None: not yet, (): could not. At most PREPARES times while the
        # switch is away: changes during a long outage would otherwise
        # have every one of them recompute the whole flow set.
        self.prepared = None
        self.prepares_left = PREPARES
        # Called every PACE changes of a long computation, and between the
        # chunks of a big bundle: the daemon lets the OpenFlow connection
        # answer the switch's echo requests there (a full sync of 65k
        # flows must not look like a dead controller to its probe).
        self.pause = lambda: None
        self.generation = 0
        # False while the daemon still reads NB with the switch already
        # connected (ControllerDaemon.wait_synced): packet-ins wait.
        self.synced = True
        # Reads the switch's flows (flowdump.dump of its management
        # socket), set by the daemon; None: a full sync replaces them all.
        self.switch_flows = None
        self.iface_names = {}       # interface name -> iface-id
        # br-int patch port name -> physnet (from bridge_mappings)
        self.patch_ports = {}
        # Networks this chassis programs, recomputed once per event batch
        # (before the switch is touched); see LocalState.programmed_networks.
        self.programmed = set()
        # Ports of those networks (on any chassis): their own flows
        # (App.port_flows) are installed.
        self.programmed_ports = set()
        # The apps' keys whose flows (App.key_flows) are installed.
        self.programmed_keys = frozenset()
        self.selection = None       # the NB topics followed (selection.py)
        self.bfd = None             # BFD sessions to the other chassis
        self.chassis_changed = False    # in the batch being applied
        self.lb_health = None       # health checks of local pool members
        self.committed = []         # commit times of this batch's changes
        self.flows_counted = 0.0    # when dragonflow_flows was last set
        # Inputs of the main loop, by event kind; each returns Touched.
        self.inputs = {
            'nb': self._handle_nb, 'iface': self._handle_iface,
            'tick': self._handle_tick, 'neighbour': self._handle_neighbour,
            'datapath': self._handle_datapath,
            'datapath_lost': self._handle_datapath_lost,
            'barrier': self._handle_barrier,
            'trace': self._handle_trace,
        }
        # The full sync sent but not yet confirmed by the switch: (datapath,
        # barrier xid, what to log when its reply comes).
        self.sync_pending = None
        # What an NB change of each followed table touches.
        self.touches = {
            'chassis': self._touched_chassis,
            'logical_switch': self._touched_logical_switch,
            'subnet': self._touched_subnet,
            'logical_port': self._touched_logical_port,
            'logical_router': self._touched_logical_router,
            'logical_router_port': self._touched_logical_router_port,
            'security_group': self._touched_security_group,
            'security_group_rule': self._touched_security_group_rule,
            'floating_ip': self._touched_floating_ip,
            # A trunk's subports come as child_port_segmentation objects.
            'trunk': self._touched_nothing,
            'child_port_segmentation':
                self._touched_child_port_segmentation,
            'port_pair': self._touched_sfc,
            'port_pair_group': self._touched_sfc,
            'flow_classifier': self._touched_sfc,
            'port_chain': self._touched_sfc,
        }
        for table in lb_app.LB_TABLES:
            self.touches[table] = self._touched_keys
        for table in fwaas_app.FW_TABLES + tap_app.TAP_TABLES + \
                state_mod.MCAST_TABLES:
            # Firewall flows are keyed by group, port and interface, tap
            # flows by source port and service, multicast by group.
            self.touches[table] = self._touched_keys
        missing = sorted(set(FOLLOWED) - set(self.touches))
        if missing:
            raise ValueError(f'no NB change handler for {", ".join(missing)}')

    # --- inputs (any thread) ---------------------------------------------
    def post(self, kind, payload):
        """Queue an event for the main loop (from any thread)."""
        self.inbox.post(kind, payload)

    def on_nb_change(self, change):
        self.post('nb', change)

    def on_interface(self, name, iface_id, ofport):
        if self.selection is not None:
            self.selection.interface(name, iface_id if ofport else None)
        self.post('iface', (name, iface_id, ofport))

    def packet_in(self, msg):
        """A packet-in, to the one app that asked for it (packet_in.py);
        none before the local view is complete (``synced``)."""
        if not self.synced:
            return
        found = self.packet_ins.route(msg)
        if found is None:
            return
        app, handler = found
        metrics.PACKET_INS.labels(app.name).inc()
        try:
            handler(self.state, msg, _sender(msg.datapath))
        except Exception:
            LOG.exception('%s failed on a packet-in', app.name,
                          extra=logs.fields(app=app.name))

    # --- main loop -------------------------------------------------------
    def run(self):
        freeze_heap()
        sys.setswitchinterval(SWITCH_INTERVAL)
        while True:
            self.step([self.inbox.get()] + self.inbox.drain())
            if self.inbox.empty():
                self._maybe_prepare_full_sync()

    def _maybe_prepare_full_sync(self):
        """Compute the next full sync ahead (_prepare_full_sync) if no
        switch is connected, it is not computed yet and the computations
        allowed while the switch is away are not used up."""
        if self.datapath is not None or self.prepared is not None or \
                not self.prepares_left:
            return
        self.prepares_left -= 1
        try:
            self._prepare_full_sync()
        except Exception:
            # Not again until something changes: the full sync computes
            # everything itself anyway.
            self.prepared = ()
            LOG.exception('could not compute the next full sync ahead; it '
                          'is computed on connection')

    def step(self, batch):
        """Apply a batch of inputs and bring the switch up to date."""
        try:
            self._step(batch)
        finally:
            # NB lag: from each change's commit to its flows sent.
            now = time.time()
            for committed in self.committed:
                metrics.NB_LAG.observe(max(0.0, now - committed))
            self.committed = []

    def _step(self, batch):
        touched = self.apply(batch)
        if touched == NOTHING:
            return          # a tick, or nothing flows depend on: no work
        if touched._replace(full=False) != NOTHING:
            self.prepared = None    # computed from an older state
        state = self.state
        # Networks that became (or stopped being) needed here, e.g. the
        # far side of a router when its first local port appears.
        programmed = set(state.programmed_networks())
        whole = set(touched.networks) | (programmed ^ self.programmed)
        self.programmed = programmed
        ports = state.port_ids(programmed)
        dirty = whole | (touched.shared & programmed)
        dirty_ports = (touched.ports & (ports | self.programmed_ports)) | \
            (ports ^ self.programmed_ports) | \
            state.port_ids(whole & programmed)
        self.programmed_ports = ports
        keys = df_apps.programmed_keys(self.apps, state)
        if keys is self.programmed_keys:
            dirty_keys = touched.keys & keys    # the usual case: no walk
        else:
            dirty_keys = (touched.keys & (keys | self.programmed_keys)) | \
                (keys ^ self.programmed_keys)
        self.programmed_keys = keys
        try:
            if touched.full:
                self._full_sync()
            elif dirty or dirty_ports or dirty_keys:
                self._sync(dirty, dirty_ports, dirty_keys)
            else:
                return
        except Exception:
            LOG.exception('error programming the switch')
            return
        # What changed may need announcing or resolving now (a new
        # router interface, a moved floating IP), not at the next tick.
        self._handle_tick(None)

    def apply(self, batch):
        """Apply inputs to the local state; what they touch, with the
        port bindings they call for written."""
        # Accumulated in place: a batch may hold thousands of changes (a
        # resync), and joining immutable values would copy them each time.
        parts = [set() for _ in Touched._fields[:-1]]
        full = False
        for kind, payload in batch:
            try:
                touched = self.inputs[kind](payload)
            except Exception:
                LOG.exception('error handling %s event', kind)
                continue
            for part, value in zip(parts, touched):
                part |= value
            full = full or touched.full
        touched = Touched(*parts, full=full)
        if self.chassis_changed:
            self.chassis_changed = False
            if self.bfd is not None:
                self.bfd.want({c.id: c.ip for c in
                               self.state.objects['chassis'].values()})
        bindings = {}
        for port_id in sorted(touched.claims | touched.moved):
            port = self.state.get('logical_port', port_id)
            if port is None:
                continue
            chassis = self.state.chassis_id
            if self.state.is_local(port):
                if port.binding_chassis != chassis:
                    bindings[port_id] = chassis
            elif port_id in touched.moved and \
                    port.binding_chassis == chassis:
                bindings[port_id] = None
        if bindings:
            self._write_bindings(bindings, self._binding_known(bindings))
        return touched

    def _binding_known(self, bindings):
        """What writing these bindings would read, as the replica has it:
        the ports, their networks and the chassis (NbApi.write_many's
        ``known``; a port changed meanwhile is read again)."""
        state = self.state
        known = {}
        for port_id, chassis in bindings.items():
            port = state.get('logical_port', port_id)
            for obj in (port, state.get('logical_switch', port.network_id),
                        chassis and state.get('chassis', chassis)):
                if obj:
                    known[(obj.table, obj.id)] = obj
        return list(known.values())

    def _handle_nb(self, change):
        """Apply an NB change to the local state; what it touches."""
        metrics.NB_CHANGES.labels(change.table).inc()
        if change.committed_at:
            self.committed.append(change.committed_at)
        if change.action == 'delete':
            old = self.state.remove(change.table, change.id)
        else:
            old = self.state.put(change.new)
        return self.touches[change.table](change, change.obj, old)

    # What a change of each table touches (new or deleted obj, old obj).
    def _touched_nothing(self, change, obj, old):
        return NOTHING

    def _touched_logical_switch(self, change, obj, old):
        return Touched(networks={change.id})

    def _touched_subnet(self, change, obj, old):
        return Touched(networks={o.network_id for o in (obj, old)
                                 if o is not None})

    def _touched_logical_port(self, change, obj, old):
        # Its own flows, and its network's shared ones (the flood list)
        # unless nothing of those can change.
        claims = {obj.id} if change.action != 'delete' else ()
        now, before = (None, old or obj) if change.action == 'delete' \
            else (obj, old)
        shared = () if self._remote_and_alike(now, before) else \
            {o.network_id for o in (obj, old) if o is not None}
        return self._port_policy_changed(obj, old) | Touched(
            shared=shared, claims=claims)

    def _remote_and_alike(self, obj, old):
        """Whether a port change (obj: the port now, None once deleted;
        old: before, None when created) leaves its network's shared flows
        as they are: the port is not here (before or after), not a trunk
        subport, stays on its network and chassis, its chassis keeps (or
        had) other ports on the network, and no app's network flows read it
        (App.remote_port_shapes_network). Then a change of a port on
        another chassis costs its own flows only, not a recomputation of
        the network's flood list (O(chassis), on every chassis)."""
        state = self.state
        ports = [p for p in (obj, old) if p is not None]
        if any(state.is_local(p) or p.id in state.segments for p in ports):
            return False
        if obj is not None and old is not None and (
                obj.network_id != old.network_id or
                obj.binding_chassis != old.binding_chassis):
            return False
        port = obj or old
        chassis = port.binding_chassis
        if (obj is None or old is None) and chassis and \
                chassis != state.chassis_id and \
                state.chassis(chassis) is not None and \
                not state.other_remote_ports_on(port):
            return False            # its chassis joins or leaves
        return not any(df_apps.remote_port_shapes_network(
            self.apps, state, p) for p in ports)

    def _touched_chassis(self, change, obj, old):
        # The BFD ports follow once the whole batch is applied (apply): a
        # wish per change, at start the first with only some of the
        # chassis read, removed the ports of the others (and the packets
        # their tunnel was carrying) only to add them back.
        self.chassis_changed = True
        # Keyed flows that tunnel to the chassis (multicast groups).
        return Touched(networks=self.programmed, keys=df_apps.touched_keys(
            self.apps, self.state, 'chassis', obj, old))

    def _touched_logical_router_port(self, change, obj, old):
        nets = set()
        for rport in (obj, old):
            if rport is not None:
                nets.add(rport.network_id)
                nets |= {p.network_id for p in
                         self.state.router_interfaces(rport.router_id)}
        return Touched(networks=nets, keys=df_apps.touched_keys(
            self.apps, self.state, 'logical_router_port', obj, old))

    def _touched_logical_router(self, change, obj, old):
        state = self.state
        nets = {p.network_id for p in state.router_interfaces(change.id)}
        return Touched(networks=nets | (
            {state.gateway_network(r) for r in (obj, old)
             if r is not None} - {None}), keys=df_apps.touched_keys(
                 self.apps, state, 'logical_router', obj, old))

    def _touched_floating_ip(self, change, obj, old):
        # NAT flows of a floating IP are its port's (nat.port_flows); a
        # VIP's floating IP is also in the lb app's keyed flows.
        fips = [fip for fip in (obj, old) if fip is not None]
        return Touched(shared={fip.floating_network_id for fip in fips},
                       ports={fip.port_id for fip in fips if fip.port_id},
                       keys=df_apps.touched_keys(self.apps, self.state,
                                                 'floating_ip', obj, old))

    def _touched_security_group(self, change, obj, old):
        # Its ports and rules carry what its flows need but its key, which
        # names its conjunctions: only its coming or going touches them.
        if obj is not None and old is not None:
            return NOTHING
        return self._group_members({change.id}) | \
            self._touched_keys(change, obj, old)

    def _touched_security_group_rule(self, change, obj, old):
        # Its own flows are keyed; its group's local ports' flows change
        # only when they name a conjunction more or less.
        members = self._group_members({obj.security_group_id}) \
            if sg_app.rule_shapes_ports(self.state, obj, old) else NOTHING
        return members | self._touched_keys(change, obj, old)

    def _touched_child_port_segmentation(self, change, obj, old):
        parent = self.state.get('logical_port', obj.parent_id)
        nets = {parent.network_id} if parent is not None else set()
        return Touched(networks=nets) | self._port_moved(obj.port_id)

    def _touched_sfc(self, change, obj, old):
        # Chains are few and span networks: recompute what is here.
        return Touched(networks=self.programmed)

    def _touched_keys(self, change, obj, old):
        # The apps' keyed flows a change touches: all there is for the
        # load balancer (listener, member, backend), firewall (group, port,
        # interface) and tap (source port, service) tables.
        return Touched(keys=df_apps.touched_keys(
            self.apps, self.state, change.table, obj, old))

    def _port_policy_changed(self, port, old):
        """A port changed: its own flows, and the apps' keyed flows it is
        part of (e.g. the address sets of its security groups); a load
        balancer member's port: the VIP port whose floating IP's chassis
        it takes part in choosing (nat.port_flows)."""
        vips = lb_app.vip_ports_of(self.state, [p for p in (port, old)
                                                if p is not None])
        return Touched(ports={port.id} | vips, keys=df_apps.touched_keys(
            self.apps, self.state, 'logical_port', port, old))

    def _group_members(self, group_ids):
        """The local ports of these security groups (their rules are
        port_flows of local ports only)."""
        return Touched(ports={p.id for g in group_ids
                              for p in self.state.group_ports(g)
                              if self.state.is_local(p)})

    def _handle_iface(self, payload):
        name, iface_id, ofport = payload
        state = self.state
        if name in pl.TUNNEL_PORTS.values():
            ttype = next(t for t, n in pl.TUNNEL_PORTS.items() if n == name)
            return self._uplink(state.tunnel_ofports, ttype, ofport)
        if name in self.patch_ports:
            return self._uplink(state.provider_ofports,
                                self.patch_ports[name], ofport)
        previous = self.iface_names.get(name)
        if ofport is None or not iface_id:
            self.iface_names.pop(name, None)
            if previous and state.ofports.pop(previous, None) is not None:
                return self._port_moved(previous)
            return NOTHING
        self.iface_names[name] = iface_id
        touched = Touched(ports={iface_id})
        if previous and previous != iface_id:
            state.ofports.pop(previous, None)
            touched |= self._port_moved(previous)
        if state.ofports.get(iface_id) == ofport:
            return touched
        state.ofports[iface_id] = ofport
        # A port not known yet (not in NB, or its topic's feed is still
        # being read) is bound when its NB change arrives.
        return touched | self._port_moved(iface_id)

    def _port_moved(self, port_id):
        """A port (and so its trunk subports) arrived on or left this
        chassis: its networks, its per-port flows, its binding."""
        ports = [self.state.get('logical_port', pid) for pid in
                 [port_id] + list(self.state.children.get(port_id, ()))]
        ports = [p for p in ports if p is not None]
        ids = {p.id for p in ports}
        keys = set()
        for port in ports:
            keys |= df_apps.touched_keys(self.apps, self.state,
                                         'logical_port', port, port)
        return Touched(shared={p.network_id for p in ports}, ports=ids,
                       keys=keys, moved=ids)

    def _uplink(self, ofports, key, ofport):
        """A tunnel or provider patch port appeared, moved or went."""
        if ofports.get(key) == ofport:
            return NOTHING
        if ofport is None:
            ofports.pop(key, None)
        else:
            ofports[key] = ofport
        return Touched(networks=self.programmed, keys=df_apps.touched_keys(
            self.apps, self.state, 'uplink', None, None))

    def _handle_tick(self, _):
        if self.lb_health is not None:
            self.lb_health.want(*lb_health.targets(self.state))
        now = time.monotonic()
        if now - self.flows_counted >= FLOW_METRICS_EVERY:
            self.flows_counted = now
            metrics.set_flows(self.installed.counts())
            metrics.LOCAL_PORTS.set(len(self.state.ofports))
        if self.datapath is None:
            return NOTHING
        send = _sender(self.datapath)
        for app in self.apps:
            try:
                app.tick(self.state, send)
            except Exception:
                LOG.exception('%s failed on a tick', app.name,
                              extra=logs.fields(app=app.name))
        return NOTHING

    def _handle_neighbour(self, payload):
        """An app learned a neighbour's MAC (e.g. the external gateway)."""
        net_id, ip, mac = payload
        if self.state.neighbours.get((net_id, ip)) == mac:
            return NOTHING
        LOG.info('neighbour %s on network %s is at %s', ip, net_id, mac,
                 extra=logs.fields(network=net_id))
        self.state.neighbours[(net_id, ip)] = mac
        return Touched(networks=self.programmed)

    def _handle_datapath(self, dp):
        self.datapath = dp
        self.writer = flowcodec.FlowWriter(dp, self.pause, self.codec)
        return Touched(full=True)

    def _handle_datapath_lost(self, dp):
        if self.datapath is dp:
            self.datapath = None
            self.writer = None
            self.prepares_left = PREPARES
        return NOTHING

    # --- port binding ----------------------------------------------------
    def _write_bindings(self, bindings, known=()):
        """Write port bindings ({port id: chassis or None}) off the main
        loop: the ports of one batch of events (a burst of plugs) in few NB
        transactions (NbApi.write_many; from the ``known`` objects, so
        with no read first: the other chassis wait for the binding), one
        port at a time if that fails (a port deleted meanwhile)."""
        def written(port_id, chassis):
            LOG.info('port %s %s', port_id,
                     f'bound to {chassis}' if chassis else 'unbound',
                     extra=logs.fields(
                         port=port_id,
                         chassis=chassis or self.state.chassis_id))

        def write():
            try:
                self.nb.write_many([
                    ('patch', 'logical_port', port_id,
                     {'binding_chassis': chassis})
                    for port_id, chassis in bindings.items()],
                    known=known)
            except Exception as e:
                if len(bindings) > 1:
                    LOG.info('binding %d ports together failed (%s); one '
                             'at a time', len(bindings), e)
            else:
                for port_id, chassis in bindings.items():
                    written(port_id, chassis)
                return
            for port_id, chassis in bindings.items():
                try:
                    self.nb.patch('logical_port', port_id,
                                  {'binding_chassis': chassis})
                    written(port_id, chassis)
                except errors.NotFound:
                    pass
                except Exception as e:
                    LOG.warning('could not write binding of port %s: %s',
                                port_id, e, extra=logs.fields(port=port_id))
        self.binding_writer.submit(write)

    # --- programming the switch ------------------------------------------
    def desired(self, net_ids, port_ids, keys=()):
        """The apps' flows now for these networks, ports and keys, as
        flow table changes (an unprogrammed one: no flows)."""
        state = self.state
        return df_apps.changes(
            self.apps, state,
            {n: state.network(n) if n in self.programmed else None
             for n in sorted(net_ids)},
            {p: state.get('logical_port', p)
             if p in self.programmed_ports else None
             for p in sorted(port_ids)},
            {k: k in self.programmed_keys for k in sorted(keys)})

    def update_flows(self, changes):
        """Record the desired flows; (deletes, adds with their cookies)
        for the switch. Refused flows are logged and left out."""
        result = self.installed.update(self._paced(changes))
        for refusal in result.refused:
            self.refused += 1
            metrics.REFUSED_FLOWS.labels(refusal.app).inc()
            LOG.error('flow refused: %s', refusal.reason,
                      extra=logs.fields(app=refusal.app,
                                        table=refusal.flow.table))
        cookies = {app: ofswitch.cookie(self.generation, cookie)
                   for app, cookie in self.cookies.items()}
        adds = [(flow, cookies[app]) for app, flow in result.adds]
        return result.deletes, adds

    def _paced(self, items):
        for i, item in enumerate(items, 1):
            if i % PACE == 0:
                self.pause()
            yield item

    def _sync(self, net_ids, port_ids, keys=()):
        if self.writer is None:
            return
        deletes, adds = self.update_flows(self.desired(net_ids, port_ids,
                                                       keys))
        count = self.writer.commit(deletes, adds)
        if count:
            # Out now: os-ken's send loop is a green thread of this hub,
            # and the step's tick comes next (up to ~2 ms of apps' work).
            self.pause()
            metrics.BUNDLES.inc()
            LOG.debug('networks %s, ports %s: %d flow changes',
                      sorted(net_ids), sorted(port_ids), count)

    def _full_sync(self):
        """Bring the switch to exactly the desired flows, in one atomic
        bundle, so no packet is lost. When the switch's flows can be read
        (``switch_flows``, flowdump) and carry a generation, the bundle
        holds only the difference: a restarted agent finds its
        predecessor's flows in place, and replacing 65k of them cost
        vswitchd seconds. Otherwise everything is installed under a new
        generation after deleting every flow; either way flows of objects
        deleted while the agent was away disappear."""
        if self.writer is None:
            return
        dp = self.datapath
        present = self._switch_flows()
        if present is not None:
            self.generation = self.ovs.generation()
        if present is None or not self.generation:
            present = None
            _, self.generation = self.ovs.next_generation()
        prepared, self.prepared = self.prepared, None
        if present is not None and prepared and \
                prepared[0] == self.generation:
            _, count, keyed = prepared
        else:
            adds = self._all_flows()
            count, keyed = len(adds), None
        if present is None:
            sent = self.writer.commit(
                adds=adds, prelude=[ofswitch.delete_all(dp)])
            kept = 0
        else:
            if keyed is None:
                keyed = self._paced(self.codec.keyed(adds))
            sent, kept = self.writer.commit_over(keyed, present,
                                                 keep=pl.LEARNED)
        metrics.FULL_SYNCS.inc()
        if sent:
            metrics.BUNDLES.inc()
        # Done when the switch says so: a barrier behind the bundle's
        # commit (an agent killed, or a connection lost, before that has
        # not synced anything).
        request = ofswitch.barrier(dp)
        ofswitch.send_all(dp, [request])
        self.sync_pending = (dp, request.xid, (
            'full sync done: generation %d, %d flows, %d kept as the switch '
            'had them, %d messages sent (%d shapes, %d encoded by os-ken)',
            self.generation, count, kept, sent,
            self.writer.codec.learned, self.writer.codec.fallbacks))

    def _all_flows(self):
        """Every desired flow computed afresh (the installed table
        replaced by them): [(Flow, cookie)]."""
        self.installed.clear()
        _, adds = self.update_flows(itertools.chain(
            df_apps.global_changes(self.apps, self.state),
            self.desired(self.programmed, self.programmed_ports,
                         self.programmed_keys)))
        return adds

    def _prepare_full_sync(self):
        """With no switch connected and nothing else to do: compute the
        next full sync's flows and their keys now, under the generation
        the bridge carries, so that when the switch connects (a restarted
        agent waits for vswitchd's next attempt, up to a second) only its
        flows are left to read and compare: a restart with 66k flows
        settled ~1.3 s sooner. Dropped by any change (_step); not done
        when the bridge has no generation yet (the sync makes one)."""
        self.prepared = ()
        if self.ovs is None:
            return
        generation = self.ovs.generation()
        if not generation:
            return
        self.generation = generation
        adds = self._all_flows()
        self.prepared = (generation, len(adds),
                         list(self._paced(self.codec.keyed(adds))))
        LOG.debug('next full sync computed ahead: %d flows', len(adds))

    def _switch_flows(self):
        """The switch's flows as flowdump reads them, or None (unknown:
        the full sync then replaces them all)."""
        if self.switch_flows is None:
            return None
        try:
            return self.switch_flows()
        except (OSError, flowdump.DumpError) as e:
            LOG.warning('cannot read the switch\'s flows (%s): the full '
                        'sync replaces them all', e)
        except Exception:
            # A reply it could not parse: never a reason to skip the sync.
            LOG.exception('cannot read the switch\'s flows: the full sync '
                          'replaces them all')
        return None

    def _handle_trace(self, payload):
        tracer.run_in_loop(payload)
        return NOTHING

    def _handle_barrier(self, payload):
        if self.sync_pending and self.sync_pending[:2] == payload:
            LOG.info(*self.sync_pending[2], extra=logs.fields(
                generation=self.generation, chassis=self.state.chassis_id))
            self.sync_pending = None
        return NOTHING


def freeze_heap():
    """Leave what lives when the main loop starts out of the cyclic
    garbage collector's full passes (gc.freeze): the imported modules
    (~90k objects) and the NB replica, which every full pass walked
    again (55-110 ms each, one or two per burst of plugs on 2 cores).
    Frozen objects are still freed by reference counting; garbage cycles
    are collected first so none is frozen. Not again after a full sync
    (its flows would be frozen too): that collection, at the moment a
    restarted agent meets its switch, cost packets in the restart bench."""
    gc.collect()
    gc.freeze()


def _sender(dp):
    """send(ofport, data): a packet-out on dp; send(None, data,
    table=T, fields={...}): into the pipeline at table T with those
    fields (registers, metadata) set."""
    def send(ofport, data, table=None, fields=None):
        ofswitch.send_all(dp, [ofswitch.packet_out(dp, ofport, data, table,
                                                   fields)])
    return send


class ControllerDaemon(daemon.Daemon):
    """df-local-controller's steps in the daemon bootstrap."""

    binary = BINARY
    description = 'Dragonflow local controller'
    stop_note = ' (flows stay in place)'

    def __init__(self):
        self.mappings = {}
        self.ovs = self.chassis_id = self.controller = None
        self.services = []

    def register_opts(self, conf):
        import os_ken.controller.controller  # noqa: F401  (its options)

    def check(self, conf):
        df = conf.df
        if not df.local_ip:
            raise daemon.ConfigError('[df] local_ip is required (this '
                                     'chassis\' tunnel endpoint address)')
        try:
            df_apps.load(df.apps_list)
        except ValueError as e:
            raise daemon.ConfigError(f'[df] apps_list: {e}') from None
        try:
            self.mappings = df_conf.bridge_mappings(
                conf.df_provider_networks.bridge_mappings)
        except ValueError as e:
            raise daemon.ConfigError(f'[df_provider_networks] {e}') from None

    def start(self, conf, nb):
        """Register the chassis, then start completing the local view
        (local interfaces, then the NB objects of the topics they need):
        the first full sync replaces the previous generation's flows, so
        it must not run on a partial view (wait_synced)."""
        from dragonflow.controller.ovsdb import Ovs
        df = conf.df
        self.ovs = Ovs(df.ovsdb_connection, df.integration_bridge)
        self.chassis_id = df.chassis_id or self.ovs.system_id() or df.host
        chassis = {'id': self.chassis_id, 'hostname': df.host,
                   'ip': df.local_ip, 'tunnel_types': df.tunnel_types}
        if df.external_host_ip:
            chassis['external_host_ip'] = df.external_host_ip
        try:
            nb.patch('chassis', self.chassis_id, chassis)
        except errors.NotFound:
            nb.create('chassis', chassis)
        controller = self.controller = LocalController(
            conf, nb, self.ovs, self.chassis_id)
        # Not in the L3 flavour: its bridge floods with NORMAL, which would
        # carry broadcasts into a tunnel port with a fixed remote.
        if df.tunnel_bfd and 'l2_normal' not in df.apps_list:
            controller.bfd = BfdSessions(self.ovs, self.chassis_id,
                                         df.local_ip, df.bfd_udp_port)
        if 'lb' in df.apps_list:
            controller.lb_health = lb_health.HealthMonitors(
                nb, self.ovs, self.chassis_id)
        controller.selection = Selection(nb, controller.on_nb_change,
                                         FOLLOWED).start()
        mgmt = flowdump.mgmt_path(df.integration_bridge, df.vswitchd_unixctl)
        controller.switch_flows = lambda: flowdump.dump(mgmt)
        controller.patch_ports = {pl.patch_names(bridge)[0]: physnet
                                  for physnet, bridge in self.mappings.items()}
        self.ovs.watch_interfaces(controller.on_interface)
        tracer.Tracer(nb.client, nb.store.layout, controller,
                      df.integration_bridge, df.vswitchd_unixctl).start()
        return controller.selection

    def wait_synced(self, conf, following, timeout):
        """Set up the switch side first, then wait for the first NB sync
        in the hub, so the OpenFlow listener is up meanwhile: vswitchd
        retries a lost controller once a second at most, and an agent
        that listened only after reading NB waited up to a second more
        for its switch after a restart. The switch's connection event
        waits in the inbox until the main loop starts (serve), so the
        first full sync still runs on the complete view."""
        from os_ken.lib import hub
        self.controller.synced = False
        self._listen(conf)
        deadline = time.monotonic() + timeout
        while not following.wait_synced(0):
            if time.monotonic() >= deadline:
                return False
            hub.sleep(SYNC_POLL)
        return True

    def _listen(self, conf):
        """The integration bridge, the provider patches, and the OpenFlow
        listener the bridge connects to."""
        from os_ken.base import app_manager
        df = conf.df
        target = f'tcp:{df.of_listen_address}:{df.of_listen_port}'
        self.ovs.setup_bridge(
            df.datapath_type, target, df.local_ip, df.tunnel_types,
            df.packet_in_rate_limit, df.packet_in_burst_limit)
        self.ovs.keep_controller(target, df.packet_in_rate_limit,
                                 df.packet_in_burst_limit)
        self.ovs.setup_provider_bridges(self.mappings)
        ofswitch.DfOfApp.controller = self.controller
        conf.set_override('ofp_listen_host', df.of_listen_address)
        conf.set_override('ofp_tcp_listen_port', df.of_listen_port)
        # A busy vswitchd (deleting a thousand interfaces) may not read a
        # big bundle for seconds; os-ken's 5 s send timeout would drop the
        # connection and force a full sync. vswitchd's own inactivity
        # probe (10 s) still notices an agent that really stopped.
        conf.set_override('socket_timeout', 30.0)
        manager = app_manager.AppManager.get_instance()
        manager.load_apps(['dragonflow.controller.ofswitch'])
        self.services = manager.instantiate_apps(
            **manager.create_contexts())

    def health_ids(self, conf):
        return self.chassis_id, conf.df.host

    def serve(self, conf, nb):
        from os_ken.lib import hub
        controller = self.controller
        controller.pause = lambda: hub.sleep(0)

        def ticker():
            while True:
                hub.sleep(TICK)
                controller.post('tick', None)
        controller.synced = True
        self.services += [hub.spawn(controller.run), hub.spawn(ticker)]
        LOG.info('%s running on chassis %s (%s), apps: %s', BINARY,
                 self.chassis_id, conf.df.local_ip,
                 ', '.join(conf.df.apps_list))
        hub.joinall(self.services)


def main(argv=None):
    from os_ken import cfg as osken_cfg
    return daemon.run(ControllerDaemon(), argv, osken_cfg.CONF)


if __name__ == '__main__':
    sys.exit(main())
