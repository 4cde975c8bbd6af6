"""Selective distribution: the NB topics this chassis follows.

A chassis needs the objects its local ports refer to and the other ports of
their networks, not the whole NB. Every NB write also goes to a feed
(dragonflow.nb.changes): that of its object's topic, except for ports and
subnets, which go to the feed of their network's topic (so a port on a
shared network is seen by every chassis with a port there, whoever owns
it). An object may refer only to its own topic or to shared objects (empty
topic; the NB API refuses other references), so a local port's network is
in its topic or shared, and the shared feed plus the feeds of the local
ports' topics hold everything the local ports need. The chassis reads
nothing about other topics (Dragonflow's "selective topology
distribution").

The topic of a local port comes from the feeds already followed when one
of them has delivered the port (a port created before it is plugged: the
usual case, and no ZooKeeper request at all); otherwise it is read from the
port's znode with a watch (an exists watch while it does not exist), which
also says when a port named by an interface's iface-id is created later.
The reads of many new local ports (an agent starting with 1,000 of them) go
in one pipeline, not one round trip each; a fired watch, or a reconnect
after the session was lost (its watches with it), reads the port again. A
topic never changes (an immutable field), so once a feed has delivered the
port a changed znode (its binding written) is not read again: that feed
reports the port's deletion, which reads it again (an exists watch for its
re-creation). When the first
local port of a topic appears, a Subscriber of that topic's feed starts (its
first sync reads the topic's members); when the last one goes, the
subscriber is released and the topic's objects leave the local view.

Threads: interface reports come from the OVSDB thread, data watches from
kazoo's; both only record and wake this module's worker, which starts and
releases subscribers (blocking ZooKeeper calls stay off the OpenFlow hub).
"""
import json
import logging
import threading
import time

from kazoo import exceptions as kz
from kazoo.protocol.states import EventType
from kazoo.protocol.states import KazooState

LOG = logging.getLogger(__name__)
UNKNOWN = object()


def _topic_of(data):
    """A port znode's topic; None if the port does not exist."""
    if data is None:
        return None
    try:
        return json.loads(data).get('topic') or ''
    except (ValueError, AttributeError):
        return ''           # corrupt: the shared feed is followed anyway


class Selection:
    """Follows the shared feed and the feeds of the local ports' topics,
    delivering every change to ``callback`` (like a Subscriber)."""

    def __init__(self, nb, callback, tables, name='controller'):
        self.nb = nb
        self.callback = callback
        self.tables = tables
        self.name = name
        self.subscribers = {}       # topic -> Subscriber (worker-owned)
        self._ifaces = {}           # interface name -> iface-id
        self._topics = {}           # local port id -> topic | None
        self._delivered = {}        # port id -> topic, as the feeds have it
        self._watches = {}          # local port id -> token of its watch
        self._stale = set()         # local port ids to read again
        self._session_lost = False
        self._missing_logged = set()
        self._lock = threading.Lock()
        self._kick = threading.Event()
        self._settled = threading.Event()
        self._stopped = threading.Event()
        self._thread = None

    # --- life cycle --------------------------------------------------------
    def start(self):
        self.nb.client.add_listener(self._on_state)
        self.subscribers[''] = self._subscribe('')
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f'df-{self.name}-selection')
        self._thread.start()
        self._wake()
        return self

    def stop(self):
        self._stopped.set()
        self._kick.set()
        self.nb.client.remove_listener(self._on_state)
        if self._thread is not None:
            self._thread.join(timeout=10)
        for subscriber in list(self.subscribers.values()):
            subscriber.stop()

    def wait_synced(self, timeout):
        """True once the topics of the interfaces reported so far are
        resolved and every feed followed has done its first sync."""
        deadline = time.monotonic() + timeout
        while not self._stopped.is_set():
            if not self._settled.wait(max(0, deadline - time.monotonic())):
                return False
            for subscriber in list(self.subscribers.values()):
                if not subscriber.wait_synced(
                        max(0, deadline - time.monotonic())):
                    return False
            if self._settled.is_set():
                return True
        return False

    def topics(self):
        return sorted(self.subscribers)

    # --- inputs (any thread) -------------------------------------------------
    def interface(self, name, iface_id):
        """A local interface now carries ``iface_id`` (None: unplugged or
        no iface-id)."""
        with self._lock:
            if self._ifaces.get(name) == iface_id:
                return
            if iface_id:
                self._ifaces[name] = iface_id
            else:
                self._ifaces.pop(name, None)
        self._wake()

    def _wake(self):
        with self._lock:
            self._settled.clear()
            self._kick.set()

    def _on_state(self, state):
        """kazoo's connection listener (its thread: no blocking)."""
        if state == KazooState.LOST:
            self._session_lost = True
        elif state == KazooState.CONNECTED and self._session_lost:
            # The watches went with the session: read every port again.
            self._session_lost = False
            with self._lock:
                self._stale |= set(self._watches)
            self._wake()

    # --- worker ------------------------------------------------------------
    def _run(self):
        while not self._stopped.is_set():
            self._kick.wait()
            self._kick.clear()
            if self._stopped.is_set():
                break
            try:
                self._round()
            except Exception:
                LOG.exception('%s: error updating the followed topics',
                              self.name)
                self._stopped.wait(0.5)
                self._kick.set()
                continue
            with self._lock:
                if not self._kick.is_set():
                    self._settled.set()

    def _round(self):
        with self._lock:
            ports = set(self._ifaces.values())
            stale, self._stale = self._stale, set()
        self._watch(sorted((ports - set(self._watches)) |
                           (stale & ports)))
        for port_id in set(self._watches) - ports:
            del self._watches[port_id]
            with self._lock:
                self._topics.pop(port_id, None)
        with self._lock:
            wanted = {''} | {t for p, t in self._topics.items()
                             if p in ports and t is not None}
        for topic in sorted(wanted - set(self.subscribers)):
            LOG.info('%s: following topic %r (a local port is in it)',
                     self.name, topic)
            self.subscribers[topic] = self._subscribe(topic)
        for topic in sorted(set(self.subscribers) - wanted):
            LOG.info('%s: no local port in topic %r any more; forgetting '
                     'its objects', self.name, topic)
            self.subscribers.pop(topic).release()

    def _subscribe(self, topic):
        return self.nb.subscribe(self._deliver, tables=self.tables,
                                 name=f'{self.name}[{topic or "shared"}]',
                                 feed=topic)

    def _deliver(self, change):
        """A change from a followed feed (a subscriber's thread): the
        topics of the ports delivered; a local port deleted is read again
        (then watched for its re-creation)."""
        if change.table == 'logical_port':
            with self._lock:
                if change.new is None:
                    self._delivered.pop(change.id, None)
                    gone = change.id in self._watches     # a local port
                    if gone:
                        self._stale.add(change.id)
                else:
                    self._delivered[change.id] = change.new.topic
                    gone = False
            if gone:
                self._wake()
        self.callback(change)

    def _watch(self, port_ids):
        """The topics of local ports: from the feeds when they have
        delivered the port, else read from their znodes with a watch that
        reads them again when they change (or are created: an exists
        watch while missing), in one pipeline."""
        client = self.nb.client
        pending = []
        for port_id in port_ids:
            token = self._watches[port_id] = object()
            with self._lock:
                topic = self._delivered.get(port_id, UNKNOWN)
            if topic is not UNKNOWN:
                self._resolved(port_id, topic)
                continue
            path = self.nb.store.layout.obj('logical_port', port_id)
            watch = self._watcher(port_id, token)
            pending.append((port_id, token, path, watch,
                            client.get_async(path, watch=watch)))
        missing, failed = [], set()
        for port_id, token, path, watch, result in pending:
            try:
                data, _ = result.get()
            except kz.NoNodeError:
                missing.append((port_id, token, client.exists_async(
                    path, watch=watch)))
                continue
            except kz.KazooException:
                failed.add(port_id)
                continue
            self._seen(port_id, data)
        for port_id, token, result in missing:
            try:
                stat = result.get()
            except kz.KazooException:
                failed.add(port_id)
                continue
            if stat is not None:
                # Created between the two reads: read it (its watch fired
                # too, harmlessly: the token check drops one of the two).
                self._watches[port_id] = object()
                with self._lock:
                    self._stale.add(port_id)
                self._wake()
            else:
                self._seen(port_id, None)
        if failed:
            # The connection went meanwhile: read them again shortly.
            LOG.info('%s: could not read %d local ports; retrying',
                     self.name, len(failed))
            with self._lock:
                self._stale |= failed
            self._stopped.wait(0.5)
            self._wake()

    def _watcher(self, port_id, token):
        def fired(event):
            if self._watches.get(port_id) is not token or \
                    self._stopped.is_set():
                return              # unplugged or read again since
            if event.type == EventType.CHANGED and \
                    port_id in self._delivered:
                return              # same topic; its feed tells a delete
            with self._lock:
                self._stale.add(port_id)
            self._wake()
        return fired

    def _seen(self, port_id, data):
        """A local port's znode read (data None: it does not exist)."""
        self._resolved(port_id, _topic_of(data))

    def _resolved(self, port_id, topic):
        """A local port's topic (None: the port does not exist)."""
        if topic is None and port_id not in self._missing_logged:
            self._missing_logged.add(port_id)
            LOG.warning('iface-id %s is not an NB port; left unbound '
                        'until it appears', port_id)
        with self._lock:
            old = self._topics.get(port_id, UNKNOWN)
            self._topics[port_id] = topic
        if topic != old:
            self._wake()
