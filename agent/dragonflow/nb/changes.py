"""The NB change stream: an ordered change log in ZooKeeper and subscribers
that never miss a change.

Guarantee
---------
Every NB write commits, in the same ZooKeeper multi-op, a sequential znode
``<root>/log/ev-<seq>`` describing it (table, id, action, topic, version and
the object's body) and touches the ``log`` node itself. ZooKeeper orders all
writes, so sequence order is commit order, and the ``log`` node's mzxid is
always the zxid of the last committed write. A :class:`Subscriber` keeps a
*position* (the last sequence it applied) and the zxid of the last write it
reflects. Whenever its one-shot watch on the ``log`` node fires (or its
session reconnects) it reads that node, re-arming the watch in the same
read, and if a newer write committed it reads the entries after its
position by number until it has reached that write. Watches are only a hint
to look again; a write committed between a trigger and the re-arm is seen
by the re-arming read itself, so none is lost. Each position is applied at
most once per subscriber (positions only grow), and every committed position
is applied unless it was trimmed first, in which case the subscriber does a
full resync: it reads every object of its tables and delivers the
difference to what it had. Applying an entry is idempotent: each local
object remembers the zxid of the write it reflects, and an entry whose zxid
is not newer is skipped (that is what makes a resync followed by a replay
of entries already reflected in the snapshot harmless).

So after any sequence of writes, ZooKeeper leader changes, connection
losses, session expiry and log trimming, a subscriber's replica converges to
exactly the store's state for its tables and topics. A bulk write commits
many entries in one transaction, all with one zxid; the log node's version
(one increment per write) tells how many to read.

The cost per change and subscriber is one small read, whatever the length
of the log: the write's transaction also leaves its entry as the log
node's data, so the read that re-arms the watch returns it. The
subscriber takes it as the entry after its position when that read shows
exactly one new write and exactly one child change (the node's child
version one above what it was at our position; a trim's deletions also
bump it, and ZooKeeper's sequence counter may or may not count them, so
the child version is compared, never used as a number). Otherwise (more
writes since, a trim, an entry too big to carry, the first write after a
listing) the entries are read by number as well: two reads.

Failure cases covered
---------------------
- one watch event for many writes, writes between trigger and re-arm: the
  re-arming read shows the newest write; all entries up to it are read.
- connection loss / leader election: kazoo reconnects within the session;
  the log is listed again on reconnect. Session expiry: the watch is lost
  with the session and re-armed by the same reconnect listing.
- subscriber slower than trimming (entries it had not read were deleted):
  detected through the *horizon* (the highest trimmed sequence, written in
  the same transaction as the deletions) and answered by a full resync.
- a gap in the numbering where an entry was expected (a trim, or servers
  whose sequence counter also counts deletions): the log is listed.
- garbage in a log entry or an object znode (not JSON, wrong schema): logged
  and skipped; the position still advances.

Topic feeds
-----------
Each write is also appended, in the same transaction, to the feed of its
object's topic (``feeds/<topic>/log``; objects with the empty topic are in
the ``shared`` feed; ports and subnets go with their network's topic, see
Model.feed_with), which works exactly like the global log, with its own
horizon, and lists the feed's objects under ``members`` for resyncs. A
Subscriber given ``feed=<topic>`` follows that feed only: it reads nothing
about other feeds' writes. The local controller follows the shared feed and
the feeds of its local ports' topics (dragonflow.controller.selection);
other consumers follow the global log.

Trimming deletes a prefix of the log: entries beyond ``max_entries`` or
older than ``retention`` seconds. ZooKeeper's sequence counter is a signed
32-bit number per parent; at 2**31 the log parent must be renewed (about
two billion writes, years at NB write rates).
"""
import json
import logging
import threading
import time

from kazoo import exceptions as kz
from kazoo.protocol.states import KazooState

from dragonflow import errors
from dragonflow.model import base
from dragonflow.store import multiread
from dragonflow.store import zk

LOG = logging.getLogger(__name__)

# Entries read at most per round of a catch-up (one request per 128:
# dragonflow.store.multiread).
WINDOW_MAX = 1024


class Change:
    """One change delivered to a subscriber.

    ``position`` is the change-log sequence, or None for a change found by a
    resync (then ``resync`` is True). ``old``/``new`` are model objects
    (``old`` is None for a create, ``new`` None for a delete).
    """

    __slots__ = ('position', 'zxid', 'table', 'id', 'action', 'old', 'new',
                 'resync', 'committed_at')

    def __init__(self, position, zxid, table, obj_id, action, old, new,
                 resync=False, committed_at=None):
        self.position, self.zxid = position, zxid
        self.table, self.id, self.action = table, obj_id, action
        self.old, self.new, self.resync = old, new, resync
        self.committed_at = committed_at

    @property
    def obj(self):
        return self.new if self.new is not None else self.old

    def __repr__(self):
        return (f'Change({self.position}, {self.action} {self.table} '
                f'{self.id}{" resync" if self.resync else ""})')


def read_horizon(client, paths):
    """(horizon, znode version): the highest trimmed sequence of a log
    (``paths``: a store Layout's or LogPaths' ``horizon``)."""
    data, stat = client.retry(client.get, paths.horizon)
    try:
        return int(json.loads(data or b'{}').get('horizon', -1)), stat.version
    except (ValueError, AttributeError):
        return -1, stat.version


def entry_path(paths, seq):
    return f'{paths.log}/{zk.LOG_PREFIX}{seq:010d}'


def trim(store, max_entries, retention, batch=1000, paths=None):
    """Delete the oldest entries of a log (the global one unless ``paths``
    names a topic feed's) beyond ``max_entries`` or older than
    ``retention`` seconds; record the new horizon atomically with them.
    Returns how many entries were deleted. Safe to run concurrently."""
    client = store.client
    paths = paths or store.layout.global_log
    seqs = sorted(s for s in map(zk.seq_of, client.retry(
        client.get_children, paths.log)) if s is not None)
    excess = max(0, len(seqs) - max_entries)
    victims = seqs[:excess]
    cutoff_ms = (time.time() - retention) * 1000
    for seq in seqs[excess:excess + batch]:
        stat = client.exists(entry_path(paths, seq))
        if stat is not None and stat.ctime >= cutoff_ms:
            break
        victims.append(seq)
    deleted = 0
    for start in range(0, len(victims), batch):
        chunk = victims[start:start + batch]
        horizon, version = read_horizon(client, paths)
        chunk = [s for s in chunk if s > horizon]
        if not chunk:
            continue
        txn = client.transaction()
        txn.set_data(paths.horizon,
                     json.dumps({'horizon': chunk[-1]}).encode(),
                     version=version)
        for seq in chunk:
            txn.delete(entry_path(paths, seq))
        results = txn.commit()
        if any(isinstance(r, Exception) for r in results):
            LOG.debug('log trim raced with another trimmer; leaving it')
            return deleted
        deleted += len(chunk)
    return deleted


class Subscriber:
    """Follows the change log and keeps a replica of some NB tables.

    ``callback(change)`` is called from the subscriber's own thread, in
    commit order. ``tables``: table names to follow (None: all).
    ``topics``: topics to follow (None: all); objects with the empty topic
    (shared objects such as chassis) are always followed. See the module
    docstring for the delivery guarantee.
    """

    def __init__(self, store, callback, tables=None, topics=None, name=None,
                 feed=None):
        self.store = store
        self.client = store.client
        self.callback = callback
        self.tables = set(tables) if tables else None
        self.topics = set(topics) if topics is not None else None
        # feed: a topic whose feed to follow instead of the global log.
        self.feed = feed
        if feed is None:
            self.paths = store.layout.global_log
        else:
            # Everything in a feed is for its followers, whatever the
            # object's own topic (a port on a shared network, say).
            self.paths = store.layout.feed(feed)
            self.topics = None
        self.name = name or 'subscriber'
        self.position = None
        self.objects = {}            # (table, id) -> (model, zxid)
        self.resyncs = 0
        self.reads = 0               # znodes read, for the benchmark
        self.delivered = 0
        self._last_zxid = -1         # zxid of the last write we reflect
        self._last_version = 0       # log node version seen (window hint)
        self._position_zxid = None   # zxid of the entry at our position
        self._cversion = None        # log's child version at our position
        self._need_listing = True
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = None
        self.synced = threading.Event()   # set after the first full sync

    # --- life cycle ------------------------------------------------------
    def start(self):
        self.store.ensure_layout(self._table_names())
        if self.feed is not None:
            self.store.ensure_feed(self.feed)
        self.client.add_listener(self._on_state)
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f'df-{self.name}')
        self._thread.start()
        self._wake.set()
        return self

    def stop(self):
        self._stopped.set()
        self._wake.set()
        self.client.remove_listener(self._on_state)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def release(self):
        """Stop following and deliver a delete for every object of the
        replica: a chassis that no longer needs a topic forgets it."""
        self.stop()
        objects, self.objects = self.objects, {}
        for (table, obj_id), (obj, zxid) in sorted(objects.items()):
            self._deliver(Change(None, zxid, table, obj_id, 'delete', obj,
                                 None, resync=True))

    def wait_synced(self, timeout=None):
        return self.synced.wait(timeout)

    def _on_watch(self, event):
        """The one-shot watch on the log node fired: a write committed."""
        self._wake.set()

    def _on_state(self, state):
        # After a reconnect (above all with a new session, which lost the
        # watch) list the log again; that also re-arms the watch.
        if state == KazooState.CONNECTED:
            self._need_listing = True
            self._wake.set()

    def _table_names(self):
        return sorted(self.tables) if self.tables else sorted(base.tables())

    def _run(self):
        while not self._stopped.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stopped.is_set():
                break
            try:
                if self.position is None:
                    self._resync()
                if self._need_listing:
                    self._list()
                self._catch_up()
            except (kz.ConnectionLoss, kz.SessionExpiredError,
                    kz.OperationTimeoutError, errors.NbUnavailable) as e:
                LOG.info('%s: ZooKeeper unavailable (%s); will catch up',
                         self.name, type(e).__name__)
                self._retry_later()
            except Exception:
                LOG.exception('%s: error while following the change log',
                              self.name)
                self._retry_later()

    def _retry_later(self):
        # The watch may not be armed after a failure: read again shortly.
        self._need_listing = True
        if not self._stopped.wait(0.5):
            self._wake.set()

    # --- reading the log -------------------------------------------------
    def _catch_up(self):
        """Fast path, O(1) in the log size: every NB write also touches the
        log node in its transaction, so its mzxid is the zxid of the last
        committed write. Read it (re-arming the watch in the same read) and,
        if newer than the last entry applied, read the entries after our
        position by number until that zxid is reached. A missing entry on
        the way (trimmed, or a numbering gap) falls back to a listing."""
        self.reads += 1
        data, stat = self.client.retry(self.client.get, self.paths.log,
                                       watch=self._on_watch)
        if stat.mzxid <= self._last_zxid:
            return
        # Writes committed after this read fire the watch just armed and
        # are read by the next round. Every write touches the log node once,
        # so its version says how many entries to read: one transaction of
        # many writes (a bulk write) has one zxid for all its entries.
        needed = stat.version - self._last_version
        self._last_version = stat.version
        if needed == 1 and data and stat.pzxid == stat.mzxid and \
                self._cversion is not None and \
                stat.cversion == self._cversion + 1:
            # One write since the last round, one child made (no trim, no
            # stray child): the entry after our position, and the node
            # carries it.
            self._cversion = stat.cversion
            self._apply_entry(self.position + 1, data, stat.mzxid)
            return
        # One more than needed: finding no entry after the last one shows
        # it is the newest (_note_children).
        window = max(1, min(WINDOW_MAX, needed + 1))
        applied = 0
        while self._last_zxid < stat.mzxid or applied < needed:
            first = self.position + 1
            for seq, result in self._read_entries(
                    range(first, first + window)):
                if result is None:
                    break
                self._apply_entry(seq, *result)
                applied += 1
            else:
                window = min(window * 2, WINDOW_MAX)
                continue
            if self._last_zxid < stat.mzxid:
                self._list()
                return
            # No entry after our position when we looked for one.
            self._note_children(stat, newest=True)
            return
        self._note_children(stat, newest=False)

    def _note_children(self, stat, newest):
        """After applying everything up to the log node's state ``stat``:
        if our position's entry is the newest child (``newest``: none
        after it when we looked) and its write the last change to the
        log's children at ``stat`` (no trim since), remember the node's
        child version: the next round then knows that a single new child
        is the entry after our position (the fast path above)."""
        self._cversion = stat.cversion \
            if newest and self._position_zxid == stat.pzxid else None

    def _list(self):
        """Slow path: list the log and apply what is after our position;
        resync if entries we had not read were trimmed. Used at start, after
        a reconnect and when the fast path finds a gap."""
        self._need_listing = False
        self.reads += 2
        stat = self.client.retry(self.client.exists, self.paths.log)
        children = self.client.retry(self.client.get_children,
                                     self.paths.log)
        seqs = sorted(s for s in map(zk.seq_of, children) if s is not None)
        if self.position not in set(seqs):
            self.reads += 1
            horizon, _ = read_horizon(self.client, self.paths)
            if horizon > self.position:
                LOG.warning('%s: fell behind the trimmed log (at %d, horizon '
                            '%d); resyncing', self.name, self.position, horizon)
                # Imported here: clients that never subscribe (dfctl, the
                # CNI plugin) start without prometheus_client.
                from dragonflow import metrics
                metrics.NB_RESYNCS.inc()
                self._resync()
                return self._list()
        new = [s for s in seqs if s > self.position]
        for seq, result in self._read_entries(new):
            if result is None:
                # Trimmed between listing and reading.
                self.reads += 1
                horizon, _ = read_horizon(self.client, self.paths)
                if horizon >= seq:
                    self._resync()
                    return self._list()
                continue
            self._apply_entry(seq, *result)
        # Everything committed before the listing has been applied.
        self._last_zxid = max(self._last_zxid, stat.mzxid)
        self._last_version = stat.version
        self._note_children(stat, newest=bool(seqs) and
                            self.position == seqs[-1])

    def _read_entries(self, seqs):
        """(seq, result) of log entries read in few requests (multiread):
        result is (data, zxid of its write), None for an entry that does
        not exist."""
        seqs = list(seqs)
        self.reads += len(seqs)
        results = multiread.get_many(
            self.client, [entry_path(self.paths, seq) for seq in seqs])
        return [(seq, result and (result[0], result[1].czxid))
                for seq, result in zip(seqs, results)]

    def _apply_entry(self, seq, data, zxid):
        """Apply log entry seq (bytes ``data``), committed at zxid."""
        self.position, self._position_zxid = seq, zxid
        self._last_zxid = max(self._last_zxid, zxid)
        try:
            entry = json.loads(data)
            table, obj_id, action = entry['table'], entry['id'], entry['action']
            topic = entry.get('topic', '')
        except (ValueError, KeyError, TypeError):
            LOG.error('%s: skipping malformed change-log entry %d', self.name,
                      seq)
            return
        if not self._follows(table, topic):
            return
        key = (table, obj_id)
        current = self.objects.get(key)
        if current is not None and current[1] >= zxid:
            return      # the replica already reflects this write or a newer one
        committed_at = entry.get('ts')
        if action == 'delete':
            if current is not None:
                del self.objects[key]
                self._deliver(Change(seq, zxid, table, obj_id, 'delete',
                                     current[0], None,
                                     committed_at=committed_at))
            return
        try:
            obj = base.model_for(table).from_dict(entry['object'], table)
            obj._version = entry.get('version')
        except (errors.ValidationError, KeyError, TypeError) as e:
            LOG.error('%s: skipping invalid %s %s in entry %d: %s', self.name,
                      table, obj_id, seq, e)
            return
        self.objects[key] = (obj, zxid)
        self._deliver(Change(seq, zxid, table, obj_id,
                             'update' if current else 'create',
                             current[0] if current else None, obj,
                             committed_at=committed_at))

    def _follows(self, table, topic):
        if self.tables is not None and table not in self.tables:
            return False
        if self.topics is not None and topic and topic not in self.topics:
            return False
        return True

    # --- full resync -----------------------------------------------------
    def _resync(self):
        """Read the whole state and deliver the difference to the replica."""
        self.resyncs += 1
        self.reads += 2
        children = self.client.retry(self.client.get_children, self.paths.log)
        horizon, _ = read_horizon(self.client, self.paths)
        seqs = [s for s in map(zk.seq_of, children) if s is not None]
        start = max(seqs) if seqs else horizon
        fresh = {}
        for table, ids in self._snapshot_ids():
            cls = base.model_for(table)
            self.reads += 1 + len(ids)
            for obj_id, data, stat in self.store.get_many_raw(table, ids):
                try:
                    obj = cls.from_json(data, stat.version)
                except errors.ValidationError as e:
                    LOG.error('%s: skipping invalid %s %s: %s', self.name,
                              table, obj_id, e)
                    continue
                if self._follows(table, obj.topic):
                    fresh[(table, obj_id)] = (obj, stat.mzxid)
        old = self.objects
        self.objects = fresh
        for key, (obj, zxid) in fresh.items():
            before = old.get(key)
            if before is None:
                self._deliver(Change(None, zxid, *key, 'create', None, obj,
                                     resync=True))
            elif before[1] != zxid:
                self._deliver(Change(None, zxid, *key, 'update', before[0],
                                     obj, resync=True))
        for key, (obj, zxid) in old.items():
            if key not in fresh:
                self._deliver(Change(None, zxid, *key, 'delete', obj, None,
                                     resync=True))
        self.position, self._position_zxid, self._cversion = start, None, None
        self._need_listing = True
        self.synced.set()

    def _snapshot_ids(self):
        """(table, ids) to read on a resync: every object of the followed
        tables, or the members of the followed feed."""
        if self.feed is None:
            for table in self._table_names():
                yield table, self.store.ids(table)
            return
        by_table = {}
        for name in self.client.retry(self.client.get_children,
                                      self.paths.members):
            table, _, obj_id = name.partition(':')
            by_table.setdefault(table, []).append(obj_id)
        for table in self._table_names():
            if table in by_table:
                yield table, by_table[table]

    def _deliver(self, change):
        self.delivered += 1
        try:
            self.callback(change)
        except Exception:
            LOG.exception('%s: subscriber callback failed on %r', self.name,
                          change)
