"""The OVSDB side, on ovsdbapp: set up the integration bridge and its
tunnel ports, and report local interfaces (``external_ids:iface-id`` =
logical port id, with their OpenFlow port numbers) to the controller."""
import logging

from ovs.db import idl
from ovsdbapp.backend.ovs_idl import connection
from ovsdbapp.backend.ovs_idl import event as row_event
from ovsdbapp.backend.ovs_idl import idlutils
from ovsdbapp.schema.open_vswitch import impl_idl

from dragonflow.controller import pipeline as pl

LOG = logging.getLogger(__name__)
GENERATION_KEY = 'df-flow-generation'
HEALTH_KEY = 'df-lb-health'    # external_ids of a health-check port
BFD_KEY = 'df-bfd-chassis'      # external_ids of a BFD port: the remote
# What the agent reads and writes, and nothing more: the IDL keeps a copy
# of every monitored column and vswitchd updates Interface statistics and
# status every few seconds, so monitoring all of it (register_all) cost
# 1.2 s at start and steady CPU with 1,000 interfaces. None: all columns.
MONITORED = {
    'Open_vSwitch': None, 'Bridge': None, 'Port': None, 'Controller': None,
    'Interface': ['name', 'type', 'options', 'external_ids', 'ofport',
                  'ofport_request', 'bfd', 'bfd_status'],
}


class ControllerLostEvent(row_event.RowEvent):
    """The bridge's controller column emptied (``ovs-vsctl del-controller``
    by an operator or a config tool: OVS 3.1 then empties the bridge)."""

    def __init__(self, bridge, callback):
        super().__init__((self.ROW_UPDATE,), 'Bridge',
                         (('name', '=', bridge),))
        self.callback = callback
        self.event_name = 'DfControllerLostEvent'

    def match_fn(self, event, row, old=None):
        # The column changed (old has it) and is now empty. old's list is
        # empty too: the Controller row it named went with it.
        return super().match_fn(event, row, old) and \
            not row.controller and hasattr(old, 'controller')

    def run(self, event, row, old):
        self.callback()


class _Idl(connection.OvsdbIdl):
    """The IDL on its own OS thread (ovsdbapp's Connection). Interface
    rows go straight to a callback on this thread (``on_interface``:
    three columns read from the row as it is); other tables' rows go to
    the event handler only when an event watches their table.

    ovsdbapp's handler copies every changed row, all columns, before it
    matches events, and runs the events on a thread of its own; a burst
    of 100 plugs is 100 Interface rows (twice: created, then given their
    ofport), 100 Port rows and the Bridge row (whose ports column names
    every port), and the copies took most of the 0.2-0.3 s the IDL spent
    on such a burst. Its cooperative_yield (a sleep(0) per row, for
    green threads) only handed the GIL away 200 times per burst and
    waited to get it back each time: there is no green thread here."""

    def __init__(self, remote, helper, handler):
        super().__init__(remote, helper)
        self.notify_handler = handler
        self.watched_tables = set()
        self.on_interface = None

    def cooperative_yield(self):
        pass

    def notify(self, event, row, updates=None):
        table = row._table.name
        if table == 'Interface' and self.on_interface is not None:
            try:
                self.on_interface(event, row)
            except Exception:
                LOG.exception('error handling an interface change')
        if table in self.watched_tables:
            self.notify_handler.notify(event, row, updates)


def interface_info(row):
    """(name, iface-id, ofport) of an Interface row; ofport None if unset."""
    ofport = row.ofport[0] if getattr(row, 'ofport', None) else None
    if ofport is not None and ofport <= 0:
        ofport = None
    return row.name, row.external_ids.get('iface-id'), ofport


class Ovs:
    """The local Open vSwitch through ovsdbapp."""

    def __init__(self, remote, bridge, timeout=10):
        self.bridge = bridge
        handler = row_event.RowEventHandler()
        helper = idlutils.get_schema_helper(remote, 'Open_vSwitch')
        for table, columns in MONITORED.items():
            if columns is None:
                helper.register_table(table)
            else:
                helper.register_columns(table, columns)
        self.idl = _Idl(remote, helper, handler)
        self.handler = handler
        self.api = impl_idl.OvsdbIdl(connection.Connection(self.idl, timeout))

    def _watch(self, event):
        self.idl.watched_tables.add(event.table)
        self.handler.watch_event(event)

    def system_id(self):
        ext = self.api.db_get('Open_vSwitch', '.', 'external_ids').execute(
            check_error=True)
        return ext.get('system-id')

    def watch_interfaces(self, callback):
        """callback(name, iface_id, ofport or None) now for every existing
        interface and then on every change (None ofport: unplugged)."""
        def on_event(event, row):
            name, iface_id, ofport = interface_info(row)
            callback(name, iface_id, None if event == idl.ROW_DELETE
                     else ofport)
        self.idl.on_interface = on_event
        rows = self.api.db_find('Interface', columns=[
            'name', 'external_ids', 'ofport']).execute(check_error=True)
        for row in rows:
            ofport = row['ofport'] if isinstance(row['ofport'], int) else None
            callback(row['name'], row['external_ids'].get('iface-id'),
                     ofport if ofport and ofport > 0 else None)

    def setup_bridge(self, datapath_type, controller, local_ip, tunnel_types,
                     rate_limit=100, burst_limit=25):
        """Integration bridge in secure fail mode with us as its only
        controller (packet-ins rate-limited by the switch), and one
        flow-based tunnel port per tunnel type."""
        with self.api.transaction(check_error=True) as txn:
            txn.add(self.api.add_br(self.bridge, may_exist=True,
                                    datapath_type=datapath_type))
            txn.add(self.api.db_set(
                'Bridge', self.bridge, ('fail_mode', 'secure'),
                ('protocols', ['OpenFlow13']),
                ('other_config', {'disable-in-band': 'true'})))
        self.set_controller(controller, rate_limit, burst_limit)
        for ttype in ('geneve', 'vxlan'):
            name = pl.TUNNEL_PORTS[ttype]
            if ttype not in tunnel_types:
                self.api.del_port(name, self.bridge, if_exists=True).execute(
                    check_error=True)
                continue
            options = {'remote_ip': 'flow', 'key': 'flow',
                       'local_ip': local_ip}
            with self.api.transaction(check_error=True) as txn:
                txn.add(self.api.add_port(self.bridge, name, may_exist=True))
                txn.add(self.api.db_set('Interface', name, ('type', ttype),
                                        ('options', options)))

    def setup_provider_bridges(self, mappings):
        """Patch ports between the integration bridge and each mapped
        provider bridge (which the operator creates, with its uplink);
        patches of mappings that went away are removed. Returns
        {br-int side patch name: physnet} for the bridges that exist."""
        wired = {}
        for physnet, bridge in sorted(mappings.items()):
            if not self.api.br_exists(bridge).execute(check_error=True):
                LOG.error('bridge_mappings: bridge %s of %s does not exist; '
                          'physical network %s is unreachable until it is '
                          'created and the agent restarted', bridge, physnet,
                          physnet)
                continue
            int_side, phy_side = pl.patch_names(bridge)
            with self.api.transaction(check_error=True) as txn:
                for br, name, peer in ((self.bridge, int_side, phy_side),
                                       (bridge, phy_side, int_side)):
                    txn.add(self.api.add_port(br, name, may_exist=True))
                    txn.add(self.api.db_set(
                        'Interface', name, ('type', 'patch'),
                        ('options', {'peer': peer}),
                        ('external_ids', {'df-physnet': physnet})))
            wired[int_side] = physnet
        for name in self.api.list_ports(self.bridge).execute(
                check_error=True):
            if name.startswith('int-') and name not in wired:
                self.api.del_port(name, self.bridge, if_exists=True).execute(
                    check_error=True)
        return wired

    def set_controller(self, controller, rate_limit, burst_limit):
        """Us as the bridge's only controller, with our connection
        settings (packet-ins rate-limited by the switch)."""
        current = self.api.get_controller(self.bridge).execute(
            check_error=True)
        if current != [controller]:
            # Setting the first controller flushes the flows; only do it
            # when it differs, so a restarted agent keeps the traffic going.
            self.api.set_controller(self.bridge, [controller]).execute(
                check_error=True)
        # max_backoff: vswitchd retries a lost controller at most 1 s
        # apart (its default doubles up to 8 s), so a restarted agent is
        # reconnected about when it listens, not up to 8 s later.
        self.api.db_set('Controller', self.bridge_controller_uuid(),
                        ('connection_mode', 'out-of-band'),
                        ('inactivity_probe', 10000),
                        ('max_backoff', 1000),
                        ('controller_rate_limit', rate_limit),
                        ('controller_burst_limit', burst_limit)).execute(
                            check_error=True)

    def keep_controller(self, controller, rate_limit, burst_limit):
        """Put us back as the controller whenever someone removes us (the
        switch reconnects and the agent's full sync refills the flows)."""
        def restore():
            LOG.warning('%s lost its controller (del-controller?): setting '
                        '%s again', self.bridge, controller)
            try:
                self.set_controller(controller, rate_limit, burst_limit)
            except Exception:
                LOG.exception('could not set the controller of %s again',
                              self.bridge)
        self._watch(ControllerLostEvent(self.bridge, restore))

    def bridge_controller_uuid(self):
        value = self.api.db_get('Bridge', self.bridge, 'controller').execute(
            check_error=True)
        return value[0] if isinstance(value, list) else value

    # --- BFD-only tunnel ports (controller/bfd.py) ------------------------
    def bfd_ports(self):
        """{interface name: (chassis id, remote ip, bfd_status)} of the
        BFD ports on the bridge."""
        rows = self.api.db_list(
            'Interface', columns=['name', 'external_ids', 'options',
                                  'bfd_status']).execute(check_error=True)
        out = {}
        for row in rows:
            chassis = row['external_ids'].get(BFD_KEY)
            if chassis:
                out[row['name']] = (chassis, row['options'].get('remote_ip'),
                                    dict(row['bfd_status']))
        return out

    def add_bfd_port(self, name, chassis_id, local_ip, remote_ip, udp_port):
        with self.api.transaction(check_error=True) as txn:
            txn.add(self.api.add_port(self.bridge, name, may_exist=True))
            txn.add(self.api.db_set(
                'Interface', name, ('type', 'geneve'),
                ('options', {'remote_ip': remote_ip, 'local_ip': local_ip,
                             'dst_port': str(udp_port)}),
                ('bfd', {'enable': 'true'}),
                ('external_ids', {BFD_KEY: chassis_id})))

    # --- load balancer health-check ports (controller/lb_health.py) -----
    def health_ports(self):
        """Names of the health-check ports on the bridge."""
        rows = self.api.db_list(
            'Interface', columns=['name', 'external_ids']).execute(
                check_error=True)
        return [row['name'] for row in rows
                if row['external_ids'].get(HEALTH_KEY)]

    def add_health_port(self, name, port_id):
        with self.api.transaction(check_error=True) as txn:
            txn.add(self.api.add_port(self.bridge, name, may_exist=True))
            txn.add(self.api.db_set(
                'Interface', name,
                ('external_ids', {'iface-id': port_id, HEALTH_KEY: 'true'})))

    def del_port(self, name):
        self.api.del_port(name, self.bridge, if_exists=True).execute(
            check_error=True)

    def generation(self):
        """The flow generation stored on the bridge (0: none yet)."""
        ext = self.api.db_get('Bridge', self.bridge, 'external_ids').execute(
            check_error=True)
        return int(ext.get(GENERATION_KEY, '0'))

    def next_generation(self):
        """Bump and return the flow generation stored on the bridge."""
        previous = self.generation()
        generation = (previous + 1) & 0xffffffff or 1
        self.api.db_set('Bridge', self.bridge, ('external_ids', {
            GENERATION_KEY: str(generation)})).execute(check_error=True)
        return previous, generation
