"""Distributed health monitoring: each chassis probes only the pool
members on its own ports, and writes their ``operating_status`` to NB;
every chassis then leaves a member in ERROR out of its hash slots
(``controller/apps/lb.py``).

Probes are real connections through the pipeline, from an address this
chassis owns on the member's network: a health-check port (an NB port with
a deterministic id per chassis and network, ``device_owner``
``network:lb-healthcheck``, port security off) plugged into br-int as a
veth whose other end is the only interface of a prober process's own
network namespace (``unshare --net``; ``controller/lb_probe.py``). The
namespace lives as long as the prober, so nothing is left behind when the
agent stops; the NB port and the OVS port go when the network has no
monitored member here any more. Probe traffic never leaves the chassis.
Members' security groups apply to probes, as to any client: they must
allow the health-check address (as Octavia's amphorae need theirs).

Octavia's counting: ``max_retries_down`` failures in a row take a member to
ERROR, ``max_retries`` successes in a row bring it back ONLINE (its first
success when it had no verdict yet); a pool without an enabled monitor
gets its members back to NO_MONITOR. A member is probed every ``delay``
seconds with ``timeout``, at ``monitor_address``/``monitor_port`` when set.
All NB, OVSDB and process work runs in a worker thread, off the main loop.

A chassis that dies stops probing its members; so every agent with
monitored members on ports bound to another chassis watches the agents'
presence in ZooKeeper (the ephemeral node of their session), and writes
ERROR for the members of a chassis whose agent has been gone longer than
the monitor's window (an agent restart is shorter; its probes bring the
members back ONLINE). Several agents may write the same ERROR.
"""
import collections
import concurrent.futures
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
import zlib

from kazoo.recipe import watchers

from dragonflow import errors
from dragonflow import logs
from dragonflow.nb import health

LOG = logging.getLogger(__name__)
AGENT = 'df-local-controller'
OWNER = 'network:lb-healthcheck'
PORT_NAMESPACE = uuid.UUID('5b0b4b8e-6a9e-4c55-9d2a-1f0d1bfb0e11')
SETUP_TIMEOUT = 10.0
STEP = 0.25             # seconds between two looks at what is due

Target = collections.namedtuple('Target', (
    'member_id', 'network_id', 'address', 'port', 'type', 'delay',
    'timeout', 'max_retries', 'max_retries_down', 'http_method', 'url_path',
    'expected_codes', 'status'))


def health_port_id(chassis_id, network_id):
    return str(uuid.uuid5(PORT_NAMESPACE, f'{chassis_id}/{network_id}'))


def health_port_mac(port_id):
    """A MAC derived from the health-check port's id (OpenStack's
    fa:16:3e range)."""
    b = uuid.UUID(port_id).bytes
    return 'fa:16:3e:%02x:%02x:%02x' % (b[-3], b[-2], b[-1])


def iface_names(chassis_id, network_id):
    """(br-int end, prober end) of the health-check veth."""
    crc = zlib.crc32(f'{chassis_id}/{network_id}'.encode()) & 0xffffffff
    return f'dfhm{crc:08x}', f'dfhp{crc:08x}'


def targets(state):
    """What this chassis probes now: ({member id: Target} of members on
    its ports whose pool has an enabled monitor, {member id} of members
    on its ports left with a status and no monitor, {member id: (chassis,
    window)} of monitored members on ports bound to other chassis)."""
    monitors = {hm.pool_id: hm for hm in
                state.objects['healthmonitor'].values() if hm.admin_state_up}
    members = list(state.objects['member'].values())
    local = set()
    for port_id in state.local_port_ids():
        port = state.get('logical_port', port_id)
        if port is not None:
            local.update((port.network_id, ip) for ip in port.ips)
    probe, reset, elsewhere = {}, set(), {}
    for member in members:
        subnet = state.get('subnet', member.subnet_id)
        if subnet is None:
            continue
        where = (subnet.network_id, member.address)
        hm = monitors.get(member.pool_id)
        if where not in local:
            port = state.port_by_ip(*where)
            chassis = port.binding_chassis if port is not None else None
            if hm is not None and chassis and chassis != state.chassis_id:
                elsewhere[member.id] = (chassis, hm.delay *
                                        hm.max_retries_down + hm.timeout)
            continue
        if hm is None:
            if member.operating_status != 'NO_MONITOR':
                reset.add(member.id)
            continue
        probe[member.id] = Target(
            member.id, subnet.network_id,
            member.monitor_address or member.address,
            member.monitor_port or member.protocol_port, hm.type, hm.delay,
            hm.timeout, hm.max_retries, hm.max_retries_down, hm.http_method,
            hm.url_path, hm.expected_codes, member.operating_status)
    return probe, reset, elsewhere


def verdict(status, ok, run, target):
    """The member's new status after a probe (None: unchanged); run is
    the length of the current streak of this result."""
    if ok and status != 'ONLINE' and (
            status not in ('ERROR', 'OFFLINE') or run >= target.max_retries):
        return 'ONLINE'
    if not ok and status != 'ERROR' and run >= target.max_retries_down:
        return 'ERROR'
    return None


class ProberProcess:
    """One prober and its namespace, for one network of this chassis."""

    def __init__(self, network_id, host_end, peer_end, on_result):
        self.network_id = network_id
        self.host_end, self.peer_end = host_end, peer_end
        self.on_result = on_result
        self.ready = threading.Event()
        self.error = None
        self.proc = subprocess.Popen(
            ['unshare', '--net', '--', sys.executable, '-m',
             'dragonflow.controller.lb_probe'], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1)
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True,
                         name=f'df-lb-prober-{network_id[:8]}').start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get('op') == 'ready':
                self.ready.set()
            elif msg.get('op') == 'error':
                self.error = msg.get('detail')
                self.ready.set()
            elif msg.get('op') == 'result':
                self.on_result(msg['id'], msg['ok'], msg.get('detail', ''))

    def send(self, **msg):
        with self._lock:
            try:
                self.proc.stdin.write(json.dumps(msg) + '\n')
                self.proc.stdin.flush()
            except (OSError, ValueError):
                pass

    def setup(self, mac, cidr, mtu):
        """The veth into the prober's namespace, addressed."""
        _ip('link', 'del', self.host_end, check=False)
        _ip('link', 'add', self.host_end, 'type', 'veth', 'peer', 'name',
            self.peer_end)
        _ip('link', 'set', self.peer_end, 'netns', str(self.proc.pid))
        _ip('link', 'set', self.host_end, 'mtu', str(mtu), 'up')
        self.send(op='setup', ifname=self.peer_end, mac=mac, cidr=cidr,
                  mtu=mtu)
        if not self.ready.wait(SETUP_TIMEOUT) or self.error:
            raise RuntimeError(f'health-check prober on network '
                               f'{self.network_id}: '
                               f'{self.error or "no answer to setup"}')

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        _ip('link', 'del', self.host_end, check=False)


def _ip(*args, check=True):
    proc = subprocess.run(['ip', *args], capture_output=True, text=True)
    if check and proc.returncode:
        raise RuntimeError(f'ip {" ".join(args)}: {proc.stderr.strip()}')


class HealthMonitors:
    """The probes of this chassis' members (see the module docstring)."""

    def __init__(self, nb, ovs, chassis_id, mtu=1450):
        self.nb = nb
        self.ovs = ovs
        self.chassis_id = chassis_id
        self.mtu = mtu
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix='df-lb-health')
        self._lock = threading.Lock()
        self._wanted = None          # (targets, resets), the latest wish
        self._queued = False
        self.targets = {}            # member id -> Target
        self.probers = {}            # network id -> ProberProcess
        self.due = {}                # member id -> monotonic time
        self.streak = {}             # member id -> (ok, run)
        self.reported = {}           # member id -> status we wrote
        self._cleaned = False
        self.elsewhere = {}          # member id -> (chassis, window)
        self.alive = set()           # agents with a live session
        self.gone_since = {}         # agent id -> monotonic time
        self.marked = {}             # member id -> gone_since it was for
        self.watch = watchers.ChildrenWatch(
            nb.client, nb.store.layout.presence, self._presence)
        threading.Thread(target=self._schedule, daemon=True,
                         name='df-lb-health-scheduler').start()

    # --- from the main loop ------------------------------------------------
    def want(self, probe, reset, elsewhere):
        with self._lock:
            self._wanted = (probe, reset)
            self.elsewhere = elsewhere
            if self._queued:
                return
            self._queued = True
        self.pool.submit(self._apply)

    # --- members of dead chassis --------------------------------------------
    def _presence(self, children):
        """The agents whose ZooKeeper session is alive (a watch)."""
        now = time.monotonic()
        with self._lock:
            alive = set(children)
            for gone in self.alive - alive:
                self.gone_since.setdefault(gone, now)
            for back in alive:
                self.gone_since.pop(back, None)
            self.alive = alive

    def _mark_dead_chassis_members(self, now):
        """Members on chassis whose agent has been gone longer than their
        monitor's window: ERROR (their own agent probes them back)."""
        with self._lock:
            due = []
            for member_id, (chassis, window) in self.elsewhere.items():
                since = self.gone_since.get(
                    health.service_id(chassis, AGENT))
                if since is not None and now - since >= window and \
                        self.marked.get(member_id) != since:
                    self.marked[member_id] = since
                    due.append((member_id, chassis))
        for member_id, chassis in due:
            LOG.info('member %s: the agent of its chassis %s is gone',
                     member_id, chassis, extra=logs.fields(
                         member=member_id, chassis=chassis))
            self.pool.submit(self._write, member_id, 'ERROR')

    # --- the worker ----------------------------------------------------------
    def _apply(self):
        with self._lock:
            (probe, reset), self._queued = self._wanted, False
        try:
            if not self._cleaned:
                self._remove_stale_ports({t.network_id
                                          for t in probe.values()})
                self._cleaned = True
            for net_id in sorted({t.network_id for t in probe.values()}):
                prober = self.probers.get(net_id)
                if prober is None or not prober.alive():
                    if prober is not None:
                        prober.stop()
                    self.probers[net_id] = self._start(net_id)
            with self._lock:
                self.targets = {m: t for m, t in probe.items()
                                if t.network_id in self.probers}
                # A member probed again later starts from its NB status.
                for member_id in set(self.reported) - set(self.targets):
                    del self.reported[member_id]
                for member_id in set(self.streak) - set(self.targets):
                    del self.streak[member_id]
            for net_id in sorted(set(self.probers) -
                                 {t.network_id for t in probe.values()}):
                self._stop(net_id)
            for member_id in sorted(reset):
                self._write(member_id, 'NO_MONITOR')
        except Exception:
            LOG.exception('could not set up health checks')

    def _start(self, net_id):
        port = self._health_port(net_id)
        subnet = next((self.nb.get('subnet', s) for s in port.subnets), None)
        ip = next((i for i in port.ips if ':' not in i), None)
        if subnet is None or ip is None:
            raise RuntimeError(f'health-check port {port.id} on network '
                               f'{net_id} has no IPv4 address')
        host_end, peer_end = iface_names(self.chassis_id, net_id)
        # A port left by an earlier run holds the old veth, gone with its
        # namespace: vswitchd would not reopen the new one by that name.
        self.ovs.del_port(host_end)
        prober = ProberProcess(net_id, host_end, peer_end, self._result)
        try:
            prober.setup(port.macs[0],
                         f'{ip}/{subnet.network.prefixlen}', self.mtu)
            self.ovs.add_health_port(host_end, port.id)
        except Exception:
            prober.stop()
            raise
        LOG.info('health checks on network %s from %s', net_id, ip,
                 extra=logs.fields(network=net_id, port=port.id))
        return prober

    def _health_port(self, net_id):
        port_id = health_port_id(self.chassis_id, net_id)
        try:
            return self.nb.get('logical_port', port_id)
        except errors.NotFound:
            pass
        network = self.nb.get('logical_switch', net_id)
        port = {'id': port_id, 'name': f'lb-health-{self.chassis_id}',
                'network_id': net_id, 'topic': network.topic,
                'device_owner': OWNER, 'device_id': self.chassis_id,
                'port_security_enabled': False}
        try:
            # The same MAC each time (members' ARP caches outlive a
            # monitor deleted and created again).
            return self.nb.create('logical_port', dict(
                port, macs=[health_port_mac(port_id)]))
        except errors.UniqueConflict:
            return self.nb.create('logical_port', port)

    def _stop(self, net_id):
        prober = self.probers.pop(net_id)
        prober.stop()
        self.ovs.del_port(prober.host_end)
        try:
            self.nb.delete('logical_port',
                           health_port_id(self.chassis_id, net_id))
        except errors.NotFound:
            pass
        LOG.info('no health checks on network %s any more', net_id,
                 extra=logs.fields(network=net_id))

    def _remove_stale_ports(self, keep):
        """OVS ports of probers a previous run of the agent left."""
        wanted = {iface_names(self.chassis_id, n)[0] for n in keep}
        for name in self.ovs.health_ports():
            if name not in wanted:
                self.ovs.del_port(name)

    def _write(self, member_id, status):
        try:
            member = self.nb.get('member', member_id)
            if member.operating_status != status:
                self.nb.patch('member', member_id,
                              {'operating_status': status})
                LOG.info('member %s (%s:%s) is %s', member_id,
                         member.address, member.protocol_port, status,
                         extra=logs.fields(member=member_id))
        except errors.NotFound:
            pass
        except Exception:
            LOG.exception('could not write the status of member %s',
                          member_id)

    # --- probes --------------------------------------------------------------
    def _schedule(self):
        while True:
            time.sleep(STEP)
            now = time.monotonic()
            self._mark_dead_chassis_members(now)
            with self._lock:
                due = [t for m, t in self.targets.items()
                       if self.due.get(m, 0) <= now]
                for target in due:
                    self.due[target.member_id] = now + target.delay
            for target in due:
                prober = self.probers.get(target.network_id)
                if prober is not None and prober.ready.is_set():
                    prober.send(op='probe', id=target.member_id,
                                type=target.type, address=target.address,
                                port=target.port, timeout=target.timeout,
                                http_method=target.http_method,
                                url_path=target.url_path,
                                expected_codes=target.expected_codes)

    def _result(self, member_id, ok, detail):
        with self._lock:
            target = self.targets.get(member_id)
            if target is None:
                return
            last_ok, run = self.streak.get(member_id, (None, 0))
            run = run + 1 if last_ok == ok else 1
            self.streak[member_id] = (ok, run)
            status = self.reported.get(member_id, target.status)
            new = verdict(status, ok, run, target)
            if new is None:
                return
            self.reported[member_id] = new
        LOG.info('member %s at %s:%s: %s after %d %s', member_id,
                 target.address, target.port, new, run,
                 'successes' if ok else f'failures ({detail})',
                 extra=logs.fields(member=member_id))
        self.pool.submit(self._write, member_id, new)
