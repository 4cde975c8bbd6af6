"""Service registration and health.

A daemon registers once at start: a Service record (an NB object, so its
appearance is a normal change event) and an *ephemeral* presence znode that
lives as long as its ZooKeeper session. Then it heartbeats by overwriting
its own ``heartbeat/<service id>`` znode every ``report_interval`` seconds.
Heartbeats are not NB writes and not in the change log, so they never fan
out to subscribers; only ``service list`` reads them.

A service is **up** while its presence znode exists and its last heartbeat
is younger than ``down_time``; otherwise it is **down** (crashed: the
presence vanishes when the session expires; hung: heartbeats stop).
"""
import json
import logging
import threading
import time

from kazoo import exceptions as kz
from kazoo.protocol.states import KazooState

from dragonflow import __version__, errors

LOG = logging.getLogger(__name__)


def service_id(chassis, binary):
    return f'{chassis}.{binary}'


class ServiceReporter:
    """Registers a service and keeps its heartbeat going (own thread)."""

    def __init__(self, nb, binary, chassis, host, report_interval=25.0):
        self.nb = nb
        self.client = nb.client
        self.layout = nb.store.layout
        self.binary = binary
        self.chassis = chassis
        self.host = host
        self.report_interval = report_interval
        self.id = service_id(chassis, binary)
        self.beats = 0
        self._stop = threading.Event()
        self._thread = None

    @property
    def presence_path(self):
        return f'{self.layout.presence}/{self.id}'

    @property
    def heartbeat_path(self):
        return f'{self.layout.heartbeat}/{self.id}'

    def register(self):
        record = {'id': self.id, 'binary': self.binary,
                  'chassis': self.chassis, 'host': self.host,
                  'software_version': __version__,
                  'report_interval': self.report_interval,
                  'started_at': time.time()}
        try:
            self.nb.patch('service', self.id, record)
        except errors.NotFound:
            try:
                self.nb.create('service', record)
            except errors.AlreadyExists:
                self.nb.patch('service', self.id, record)
        self._announce()
        self.client.add_listener(self._on_state)
        self.heartbeat()
        return self

    def _announce(self):
        """(Re)create the ephemeral presence node for this session."""
        try:
            self.client.create(self.presence_path,
                               json.dumps({'host': self.host}).encode(),
                               ephemeral=True, makepath=True)
        except kz.NodeExistsError:
            # Left from our previous session until it expires: take it over.
            self.client.delete(self.presence_path)
            self.client.create(self.presence_path,
                               json.dumps({'host': self.host}).encode(),
                               ephemeral=True, makepath=True)

    def _on_state(self, state):
        if state == KazooState.LOST:
            # New session after expiry: the ephemeral node is gone; recreate
            # it from another thread (listeners must not block).
            self._lost = True
        elif state == KazooState.CONNECTED and getattr(self, '_lost', False):
            self._lost = False
            threading.Thread(target=self._reannounce, daemon=True).start()

    def _reannounce(self):
        try:
            self._announce()
        except kz.KazooException as e:
            LOG.warning('could not re-register presence of %s: %s', self.id, e)

    def heartbeat(self):
        self.beats += 1
        data = json.dumps({'ts': time.time(), 'beats': self.beats}).encode()
        try:
            self.client.set(self.heartbeat_path, data)
        except kz.NoNodeError:
            self.client.create(self.heartbeat_path, data, makepath=True)

    def start(self):
        """Register, then heartbeat every report_interval in a thread."""
        self.register()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f'heartbeat-{self.id}')
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.report_interval):
            try:
                self.heartbeat()
            except kz.KazooException as e:
                LOG.warning('heartbeat of %s failed: %s', self.id, e)

    def stop(self, unregister=False):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.client.delete(self.presence_path)
            if unregister:
                self.nb.delete('service', self.id)
                self.client.delete(self.heartbeat_path)
        except (kz.NoNodeError, errors.NotFound):
            pass


def service_status(nb, down_time, now=None):
    """Rows (dicts) describing every registered service and its state."""
    now = time.time() if now is None else now
    client, layout = nb.client, nb.store.layout
    try:
        alive = set(client.get_children(layout.presence))
    except kz.NoNodeError:
        alive = set()
    rows = []
    for svc in sorted(nb.list('service'), key=lambda s: s.id):
        try:
            data, _ = client.get(f'{layout.heartbeat}/{svc.id}')
            last = float(json.loads(data)['ts'])
        except (kz.NoNodeError, ValueError, KeyError, TypeError):
            last = None
        fresh = last is not None and now - last <= down_time
        up = fresh and svc.id in alive
        if up:
            since = svc.started_at
        else:
            since = last if last is not None else svc.started_at
        rows.append({
            'id': svc.id, 'binary': svc.binary, 'chassis': svc.chassis,
            'host': svc.host, 'version': svc.software_version,
            'state': 'up' if up else 'down', 'since': since,
            'last_heartbeat': last, 'session': svc.id in alive,
        })
    return rows


def chassis_status(nb, down_time, now=None, services=None):
    """Rows for every chassis: up when one of its services is up
    (services: service_status rows already read, else read here)."""
    if services is None:
        services = service_status(nb, down_time, now)
    rows = []
    for ch in sorted(nb.list('chassis'), key=lambda c: c.id):
        own = [s for s in services if s['chassis'] == ch.id]
        up = [s for s in own if s['state'] == 'up']
        if up:
            since = min(s['since'] for s in up if s['since'] is not None) \
                if any(s['since'] for s in up) else None
        else:
            times = [s['since'] for s in own if s['since'] is not None]
            since = max(times) if times else None
        rows.append({
            'id': ch.id, 'hostname': ch.hostname, 'ip': ch.ip,
            'tunnel_types': ch.tunnel_types,
            'state': 'up' if up else 'down', 'since': since,
            'services': [s['binary'] for s in own],
        })
    return rows


def bgp_statuses(nb):
    """What each df-bgp speaker last reported (its peers with their
    session state, the routes it advertises), by speaker id order;
    unreadable reports are left out."""
    client, path = nb.client, nb.store.layout.bgp
    try:
        names = client.get_children(path)
    except kz.NoNodeError:
        return []
    statuses = []
    for name in sorted(names):
        try:
            data, _ = client.get(f'{path}/{name}')
            statuses.append(json.loads(data))
        except (kz.NoNodeError, ValueError):
            continue
    return statuses


def since_text(ts):
    """A health timestamp as its tables show it (UTC, ISO 8601)."""
    if ts is None:
        return '?'
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(ts))
