"""The ZooKeeper store: layout, connection, reads and atomic writes.

Layout under the root (default ``/dragonflow``)::

    nb/<table>/<id>          one object, JSON body; znode version = object version
    refs/<table>/<id>        exists while the object exists; its children
                             ``<table>:<id>`` are the objects referring to it,
                             so deleting a referenced object fails atomically
                             (ZooKeeper refuses to delete a node with children)
                             and a reference to a deleted object cannot be
                             created (its parent is gone). Its data version is
                             bumped by writes that must be serialised per
                             target (``guards``).
    index/<name>/<key>       uniqueness: created in the write's transaction,
                             so a duplicate key fails the whole write.
    log/ev-<seq>             the change log, see dragonflow.nb.changes; every
                             write also touches ``log`` itself (its mzxid is
                             the last write: subscribers watch it)
    horizon                  the highest trimmed log sequence
    feeds/<feed>/            one per topic (``shared`` for the empty topic,
                             ``t-<topic>`` otherwise): ``log/ev-<seq>`` and
                             ``horizon`` like the global ones but only for
                             writes of that topic's objects, and
                             ``members/<table>:<id>`` for each of its
                             objects. A chassis follows the feeds of the
                             topics its local ports need (selective
                             distribution), not the global log.
    presence/<service>       ephemeral: the service's session is alive.
    heartbeat/<service>      last heartbeat; not logged (no fan-out).

Every NB write is a single ZooKeeper multi-op: the object, its references,
its unique keys, its guards, its feed membership and entry and its
change-log entry commit together or not at all.
"""
import collections
import json
import logging
import os
import posixpath
import time
import urllib.parse

from kazoo import exceptions as kz
from kazoo import security
from kazoo.client import KazooClient
from kazoo.handlers.threading import SequentialThreadingHandler
from kazoo.retry import KazooRetry

from dragonflow import errors
from dragonflow.store import multiread

LOG = logging.getLogger(__name__)
LOG_PREFIX = 'ev-'


TCP_CONNECT_TIMEOUT = 2.0


def _cap_connect_timeout(handler):
    """kazoo opens the TCP connection to each server with the whole
    session timeout as its timeout, so one powered-off member of an
    ensemble (no RST) costs that long on every attempt: longer than dfctl
    waits, and long enough for a daemon's session to expire while it
    reconnects. A live server accepts in milliseconds; cap the wait."""
    create = handler.create_connection

    def create_connection(*args, **kwargs):
        if kwargs.get('timeout') is not None:
            kwargs['timeout'] = min(kwargs['timeout'], TCP_CONNECT_TIMEOUT)
        return create(*args, **kwargs)
    handler.create_connection = create_connection
    return handler


def make_client(hosts, *, timeout=10.0, auth=None, world_readable=True,
                use_ssl=False, ca=None, certfile=None, keyfile=None,
                handler=None, in_order=False):
    """A KazooClient with Dragonflow's connection, auth and ACL settings
    (in_order: try the hosts in the order given, nearest first)."""
    kwargs = {'randomize_hosts': not in_order}
    if auth:
        user, _, password = auth.partition(':')
        acl = [security.make_digest_acl(user, password, all=True)]
        if world_readable:
            acl.append(security.make_acl('world', 'anyone', read=True))
        kwargs['auth_data'] = [('digest', auth)]
        kwargs['default_acl'] = acl
    if use_ssl:
        kwargs.update(use_ssl=True, ca=ca, certfile=certfile, keyfile=keyfile)
    retry_kwargs = {}
    if handler is None:
        handler = SequentialThreadingHandler()
    else:
        retry_kwargs['sleep_func'] = handler.sleep_func
    kwargs['handler'] = _cap_connect_timeout(handler)
    hosts = ','.join(hosts) if not isinstance(hosts, str) else hosts
    return KazooClient(
        hosts=hosts, timeout=timeout,
        connection_retry=KazooRetry(max_tries=-1, delay=0.1, backoff=2,
                                    max_delay=1.0, **retry_kwargs),
        command_retry=KazooRetry(max_tries=5, delay=0.1, backoff=2,
                                 max_delay=1.0, **retry_kwargs),
        **kwargs)


def _check_tls_files(df):
    """TLS files that cannot be read, named by their option (kazoo would
    only time out, retrying)."""
    if not df.zk_use_ssl:
        return
    if bool(df.zk_certfile) != bool(df.zk_keyfile):
        raise errors.NbUnavailable('TLS to ZooKeeper: give both [df] '
                                   'zk_certfile and zk_keyfile, or neither')
    for option in ('zk_ca', 'zk_certfile', 'zk_keyfile'):
        path = getattr(df, option)
        if path and not os.access(path, os.R_OK):
            raise errors.NbUnavailable(
                f'TLS to ZooKeeper: [df] {option} {path} cannot be read')


def client_from_conf(conf, handler=None):
    df = conf.df
    _check_tls_files(df)
    return make_client(df.remote_db_hosts, timeout=df.zk_session_timeout,
                       auth=df.zk_auth, world_readable=df.zk_world_readable,
                       use_ssl=df.zk_use_ssl, ca=df.zk_ca,
                       certfile=df.zk_certfile, keyfile=df.zk_keyfile,
                       handler=handler, in_order=df.remote_db_hosts_in_order)


class _LastDrop(logging.Handler):
    """Keeps the reason of kazoo's last dropped connection attempt (a
    TLS handshake that failed, a refused connection) for the error."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.reason = None

    def emit(self, record):
        message = record.getMessage()
        if message.startswith('Connection dropped: '):
            self.reason = message[len('Connection dropped: '):]


def start_client(client, connect_timeout, hosts='ZooKeeper'):
    """Connect or raise NbUnavailable within ``connect_timeout`` seconds;
    the message says why the last attempt failed when kazoo knows (e.g.
    a certificate the CA in [df] zk_ca did not sign)."""
    drops = _LastDrop()
    watched = client.logger
    saved = watched.level, watched.propagate
    if not watched.isEnabledFor(logging.WARNING):
        # Quiet (dfctl logs errors only): hear the warnings, print none.
        watched.setLevel(logging.WARNING)
        watched.propagate = False
    watched.addHandler(drops)
    try:
        client.start(timeout=connect_timeout)
    except Exception as e:  # kazoo raises its handler's timeout type
        client.stop()
        client.close()
        why = f': last attempt: {drops.reason}' if drops.reason else ''
        hint = ''
        if drops.reason and ('SSL' in drops.reason or
                             'certificate' in drops.reason):
            hint = ' (check [df] zk_ca, zk_certfile, zk_keyfile)'
        elif drops.reason and not getattr(client, 'use_ssl', False):
            hint = ' (a TLS port? then set [df] zk_use_ssl)'
        raise errors.NbUnavailable(
            f'cannot reach ZooKeeper at {hosts} within '
            f'{connect_timeout:g}s ({type(e).__name__}){why}{hint}') from None
    finally:
        watched.removeHandler(drops)
        watched.setLevel(saved[0])
        watched.propagate = saved[1]


def seq_of(name):
    """Sequence number of a change-log node name, or None if not one."""
    if not name.startswith(LOG_PREFIX):
        return None
    try:
        return int(name[len(LOG_PREFIX):])
    except ValueError:
        return None


class LogPaths(collections.namedtuple('LogPaths', 'log horizon members')):
    """Where one change log lives. The global log has every write; the feed
    of a topic has the writes of that topic's objects and, under
    ``members``, one node ``<table>:<id>`` per object of the topic (what a
    subscriber of the feed reads on a resync)."""


def feed_name(topic):
    """Node name of a topic's feed: objects with the empty topic (shared by
    all) are in ``shared``; others in ``t-<topic, percent-encoded>``."""
    return 't-' + urllib.parse.quote(topic, safe='') if topic else 'shared'


def feed_topic(name):
    """The topic of a feed node name (feed_name's inverse), or None for a
    name that is not a feed's."""
    if name == 'shared':
        return ''
    return urllib.parse.unquote(name[2:]) if name.startswith('t-') else None


class Layout:
    """Paths of everything under the root."""

    def __init__(self, root='/dragonflow'):
        self.root = root.rstrip('/') or '/'
        self.nb = posixpath.join(self.root, 'nb')
        self.refs = posixpath.join(self.root, 'refs')
        self.index = posixpath.join(self.root, 'index')
        self.log = posixpath.join(self.root, 'log')
        self.horizon = posixpath.join(self.root, 'horizon')
        self.presence = posixpath.join(self.root, 'presence')
        self.heartbeat = posixpath.join(self.root, 'heartbeat')
        self.feeds = posixpath.join(self.root, 'feeds')
        # Physical trace requests, one directory per chassis (ephemeral
        # nodes of the asking dfctl; the agent writes its answer into them).
        self.trace = posixpath.join(self.root, 'trace')
        # df-bgp's session state, one node per speaker (bgp/service.py).
        self.bgp = posixpath.join(self.root, 'bgp')
        self.global_log = LogPaths(self.log, self.horizon, None)

    def feed(self, topic):
        base = f'{self.feeds}/{feed_name(topic)}'
        return LogPaths(f'{base}/log', f'{base}/horizon', f'{base}/members')

    def table(self, table):
        return f'{self.nb}/{table}'

    def obj(self, table, obj_id):
        return f'{self.nb}/{table}/{obj_id}'

    def ref_target(self, table, obj_id):
        return f'{self.refs}/{table}/{obj_id}'

    def ref(self, target_table, target_id, table, obj_id):
        return f'{self.refs}/{target_table}/{target_id}/{table}:{obj_id}'

    def key(self, index, key):
        return f'{self.index}/{index}/{key}'

    def tops(self):
        return [self.nb, self.refs, self.index, self.log, self.horizon,
                self.presence, self.heartbeat, self.feeds]


class WriteSet:
    """Everything one NB write changes, committed as one transaction."""

    def __init__(self, action, table, obj_id, *, body=None, version=-1,
                 topic='', feed=None):
        self.action = action          # create | update | delete
        self.table = table
        self.id = obj_id
        self.body = body              # bytes for create/update
        self.version = version        # expected version (update/delete)
        self.topic = topic
        self.feed = topic if feed is None else feed   # the feed's topic
        self.add_refs = []            # (table, id) this object now refers to
        self.del_refs = []
        self.add_keys = []            # (index, key) now owned
        self.del_keys = []
        self.guards = []              # (table, id, version) serialised with
        self.log_object = None        # body dict carried by the log entry

    @property
    def owner(self):
        return f'{self.table}:{self.id}'

    def new_version(self):
        return 0 if self.action == 'create' else self.version + 1

    def log_entry(self):
        return json.dumps({
            'table': self.table, 'id': self.id, 'action': self.action,
            'topic': self.topic, 'version': self.new_version(),
            'object': self.log_object, 'ts': time.time(),
        }, separators=(',', ':')).encode()


# Bytes of entries a transaction's log nodes carry in all, besides the
# entries' own znodes (bulk writes reserve them: NbApi._chunks).
CARRIED_ENTRY_BYTES = 64 * 1024


def _carry_newest_entries(ops):
    """Each log node touched by a transaction keeps, as its data, the
    entry of the transaction's last write to that log, as long as they
    fit in CARRIED_ENTRY_BYTES together; the transaction's other touches
    write nothing. A follower one write behind then reads that write with
    the node it watches (dragonflow.nb.changes). ``ops`` as
    ZkStore._plan's, changed in place."""
    seen, budget = set(), CARRIED_ENTRY_BYTES
    for n in range(len(ops) - 1, -1, -1):
        kind, info, method, args, kwargs = ops[n]
        if kind not in ('feed', 'log') or method != 'set_data':
            continue
        path, entry = args
        if path in seen or len(entry) > budget:
            ops[n] = (kind, info, method, (path, b''), kwargs)
        else:
            budget -= len(entry)
        seen.add(path)


class ZkStore:
    """Reads and atomic writes of NB objects on one KazooClient."""

    def __init__(self, client, root='/dragonflow'):
        self.client = client
        self.layout = Layout(root)
        self._ready_paths = set()
        self._retry = client.retry

    # --- setup -----------------------------------------------------------
    def ensure_layout(self, tables=()):
        for path in self.layout.tops():
            self._retry(self.client.ensure_path, path)
        for table in tables:
            self.ensure_table(table)

    def ensure_feed(self, topic):
        feed = self.layout.feed(topic)
        for path in feed:
            self._ensure_dir(path)
        return feed

    FEEDS_FORMAT = b'feeds-1'

    def feeds_listed(self):
        """Whether every object is listed in its feed (see NbApi)."""
        data, _ = self._retry(self.client.get, self.layout.feeds)
        return data == self.FEEDS_FORMAT

    def mark_feeds_listed(self):
        self._retry(self.client.set, self.layout.feeds, self.FEEDS_FORMAT)

    def add_member(self, topic, table, obj_id):
        """List an object in a feed (idempotent); True if it was not."""
        member = f'{self.ensure_feed(topic).members}/{table}:{obj_id}'
        try:
            self._retry(self.client.create, member)
            return True
        except kz.NodeExistsError:
            return False

    def ensure_table(self, table):
        self._ensure_dir(self.layout.table(table))
        self._ensure_dir(f'{self.layout.refs}/{table}')

    def _missing_dirs(self, path, planned):
        """Index directories (below the index root) that do not exist yet,
        parents first; they are created inside the write's transaction so
        a refused write leaves nothing behind."""
        missing = []
        while path != self.layout.index and path not in self._ready_paths \
                and path not in planned:
            if self._retry(self.client.exists, path) is not None:
                self._ready_paths.add(path)
                break
            missing.append(path)
            path = posixpath.dirname(path)
        return missing[::-1]

    def _feed_dirs(self, topic):
        """A topic's feed paths, and those of its nodes that do not exist
        yet (parents first)."""
        feed = self.layout.feed(topic)
        missing = []
        for path in (posixpath.dirname(feed.log), *feed):
            if path in self._ready_paths:
                continue
            if self._retry(self.client.exists, path) is not None:
                self._ready_paths.add(path)
            else:
                missing.append(path)
        return feed, missing

    def _ensure_dir(self, path):
        if path not in self._ready_paths:
            self._retry(self.client.ensure_path, path)
            self._ready_paths.add(path)

    # --- reads -----------------------------------------------------------
    def get_raw(self, table, obj_id):
        """(bytes, ZnodeStat) or None."""
        try:
            return self._retry(self.client.get, self.layout.obj(table, obj_id))
        except kz.NoNodeError:
            return None

    def ids(self, table):
        return self._children(self.layout.table(table))

    def get_many_raw(self, table, ids):
        """Objects read in few requests (multiread); yields (id, bytes,
        stat) for those that exist."""
        ids = list(ids)
        results = multiread.get_many(
            self.client, [self.layout.obj(table, i) for i in ids])
        for obj_id, result in zip(ids, results):
            if result is not None:
                yield obj_id, *result

    def topics(self):
        """Topics that have a feed."""
        return sorted(t for t in map(feed_topic,
                                     self._children(self.layout.feeds))
                      if t is not None)

    def referrers(self, table, obj_id):
        """Names ``<table>:<id>`` of the objects referring to an object."""
        return self._children(self.layout.ref_target(table, obj_id))

    def index_keys(self, index, prefix):
        return self._children(self.layout.key(index, prefix))

    def index_owner(self, index, key):
        try:
            data, _ = self._retry(self.client.get, self.layout.key(index, key))
            return data.decode()
        except kz.NoNodeError:
            return None

    def traces(self, table, obj_id):
        """What the store holds for an object besides its node, found
        without reading its body (for removing one whose body is
        unreadable): the (table, id) it refers to, the (index, key)
        entries it owns and the topics of the feeds listing it."""
        owner = f'{table}:{obj_id}'
        lay, client = self.layout, self.client
        targets = [(t, i) for t in self._children(lay.refs)
                   for i in self._children(f'{lay.refs}/{t}')]
        found = [(t, i, client.exists_async(lay.ref(t, i, table, obj_id)))
                 for t, i in targets]
        refs = [(t, i) for t, i, result in found if result.get()]
        keys, level = [], [lay.index]
        while level:
            listed = [(p, client.get_children_async(p)) for p in level]
            level, leaves = [], []
            for path, result in listed:
                children = result.get()
                if not children and path != lay.index:
                    leaves.append(path)
                level += [f'{path}/{c}' for c in children]
            # A leaf with our owner name as its data is one of our keys.
            read = [(p, client.get_async(p)) for p in leaves]
            for path, result in read:
                if result.get()[0] == owner.encode():
                    index, _, key = path[len(lay.index) + 1:].partition('/')
                    keys.append((index, key))
        feeds = [(n, client.exists_async(f'{lay.feeds}/{n}/members/{owner}'))
                 for n in self._children(lay.feeds)]
        topics = [feed_topic(n) for n, result in feeds if result.get()]
        return refs, keys, topics

    def _children(self, path):
        """Children of a node, [] when it does not exist."""
        try:
            return self._retry(self.client.get_children, path)
        except kz.NoNodeError:
            return []

    # --- writes ----------------------------------------------------------
    def guard_versions(self, targets):
        """Current versions of guard nodes, to be read *before* the checks
        they protect; a write carrying them fails with Contention if any
        guarded write committed in between. A missing target is left out:
        the write's reference checks refuse it with a better message."""
        out = []
        for table, obj_id in targets:
            stat = self._retry(self.client.exists,
                               self.layout.ref_target(table, obj_id))
            if stat is not None:
                out.append((table, obj_id, stat.version))
        return out

    def commit(self, ws):
        """Commit a WriteSet atomically; returns the change-log position.

        Raises AlreadyExists, NotFound, StaleVersion, UniqueConflict,
        DanglingReference, StillReferenced or NbUnavailable; in every error
        case the object, its references, unique keys, feed membership and
        log entries are as they were, and a new topic's feed was not made.
        (The table's directory is created first when missing, outside the
        transaction, and stays.)
        """
        return self._commit([ws])[0]

    def commit_many(self, wss):
        """Commit several WriteSets in one transaction (all or none);
        returns their change-log positions. Errors as :meth:`commit`,
        explained for the first write that failed (``.write`` on the
        error names its WriteSet). The caller keeps the transaction under
        ZooKeeper's request size (jute.maxbuffer, 1 MB by default)."""
        return self._commit(wss)

    def _commit(self, wss):
        """One transaction for these WriteSets (commit and commit_many)."""
        feeds, ops, owners, dirs, guards = {}, [], [], set(), set()
        for ws in wss:
            self.ensure_table(ws.table)
            if ws.feed not in feeds:
                # A new topic's feed is made by the transaction itself: a
                # refused write leaves no feed behind.
                feeds[ws.feed], missing = self._feed_dirs(ws.feed)
                for path in missing:
                    dirs.add(path)
                    ops.append(('dir', path, 'create', (path,), {}))
                    owners.append(ws)
        for ws in wss:
            planned = self._plan(ws, feeds[ws.feed], dirs, guards)
            ops += planned
            owners += [ws] * len(planned)
        _carry_newest_entries(ops)
        results = self._run(wss[0], ops)
        for (kind, info, _, _, _), ws, result in zip(ops, owners, results):
            if isinstance(result, Exception) and \
                    not isinstance(result, kz.RolledBackError):
                error = self._explain(ws, kind, info, result)
                error.write = ws
                raise error
        return [seq_of(posixpath.basename(result)) for
                (kind, _, method, _, _), result in zip(ops, results)
                if kind == 'log' and method == 'create']

    def _plan(self, ws, feed, dirs, guards):
        """The transaction's operations, in order, as (kind, info, method,
        args, kwargs); kind and info say what an operation means, to
        explain its failure. ``dirs``, ``guards``: index directories and
        guard nodes an earlier write of the same transaction creates or
        updates (updated): each once per transaction (a second update of a
        guard would fail on the version the first one bumped)."""
        lay = self.layout
        ops = []

        def op(kind, info, method, *args, **kwargs):
            ops.append((kind, info, method, args, kwargs))

        for path in self._new_index_dirs(ws, dirs):
            dirs.add(path)
            op('dir', path, 'create', path)
        obj_path = lay.obj(ws.table, ws.id)
        target = lay.ref_target(ws.table, ws.id)
        if ws.action == 'create':
            op('object', None, 'create', obj_path, ws.body)
            op('target', None, 'create', target)
        elif ws.action == 'update':
            op('object', None, 'set_data', obj_path, ws.body,
               version=ws.version)
        else:
            op('target', None, 'delete', target)
            op('object', None, 'delete', obj_path, version=ws.version)
        for t, i in ws.add_refs:
            op('ref', (t, i), 'create', lay.ref(t, i, ws.table, ws.id))
        for t, i in ws.del_refs:
            op('unref', (t, i), 'delete', lay.ref(t, i, ws.table, ws.id))
        for index, key in ws.add_keys:
            op('key', (index, key), 'create', lay.key(index, key),
               ws.owner.encode())
        for index, key in ws.del_keys:
            op('unkey', (index, key), 'delete', lay.key(index, key))
        for g_table, g_id, version in ws.guards:
            if (g_table, g_id) in guards:
                continue
            guards.add((g_table, g_id))
            op('guard', (g_table, g_id), 'set_data',
               lay.ref_target(g_table, g_id), b'', version=version)
        # The object's topic feed, then the global log (its sequence is the
        # write's position); touching each log node bumps its mzxid and
        # version, and leaves the entry in it (_carry_newest_entries).
        member = f'{feed.members}/{ws.owner}'
        if ws.action == 'create':
            op('member', None, 'create', member)
        elif ws.action == 'delete':
            op('member', None, 'delete', member)
        entry = ws.log_entry()
        for kind, log in (('feed', feed.log), ('log', lay.log)):
            op(kind, None, 'create', f'{log}/{LOG_PREFIX}', entry,
               sequence=True)
            op(kind, None, 'set_data', log, entry)
        return ops

    def _new_index_dirs(self, ws, planned):
        """Missing parent directories of the unique keys ws adds (those
        in planned are created by an earlier write of the transaction)."""
        out = []
        for index, key in ws.add_keys:
            for path in self._missing_dirs(posixpath.dirname(
                    self.layout.key(index, key)), planned):
                if path not in out:
                    out.append(path)
        return out

    def _run(self, ws, ops):
        """Commit the operations as one transaction; its results."""
        txn = self.client.transaction()
        for _, _, method, args, kwargs in ops:
            getattr(txn, method)(*args, **kwargs)
        try:
            return txn.commit()
        except (kz.ConnectionLoss, kz.SessionExpiredError,
                kz.OperationTimeoutError) as e:
            raise errors.NbUnavailable(
                f'{ws.table} {ws.id}: lost the ZooKeeper connection during '
                f'the write ({type(e).__name__}); its outcome is unknown, '
                'read the object to check') from None

    def _explain(self, ws, kind, info, exc):
        if isinstance(exc, kz.NoAuthError):
            return errors.NotAuthorized(
                f'{ws.table} {ws.id}: ZooKeeper refused the write: not '
                'authorised (check [df] zk_auth)')
        if kind == 'object':
            if isinstance(exc, kz.NodeExistsError):
                return errors.AlreadyExists(ws.table, ws.id)
            if isinstance(exc, kz.BadVersionError):
                return errors.StaleVersion(ws.table, ws.id, ws.version)
            if isinstance(exc, kz.NoNodeError):
                return errors.NotFound(ws.table, ws.id)
        if kind == 'target':
            if isinstance(exc, kz.NotEmptyError):
                return errors.StillReferenced(
                    ws.table, ws.id, self.referrers(ws.table, ws.id))
            if isinstance(exc, kz.NoNodeError):
                return errors.NotFound(ws.table, ws.id)
            if isinstance(exc, kz.NodeExistsError):
                return errors.AlreadyExists(ws.table, ws.id)
        if kind == 'ref' and isinstance(exc, kz.NoNodeError):
            return errors.DanglingReference(ws.table, ws.id, *info)
        if kind == 'key' and isinstance(exc, kz.NodeExistsError):
            owner = self.index_owner(*info) or 'another object'
            return errors.UniqueConflict(info[0], info[1].split('/')[-1],
                                         owner, ws.table)
        if kind == 'dir' and isinstance(exc, kz.NodeExistsError):
            return errors.Contention(f'{ws.table} {ws.id}: directory '
                                     f'{info} created concurrently')
        if kind == 'guard':
            if isinstance(exc, kz.NoNodeError):
                return errors.DanglingReference(ws.table, ws.id, *info)
            return errors.Contention(f'{ws.table} {ws.id}: concurrent write '
                                     f'on {info[0]} {info[1]}')
        return errors.NbError(f'{ws.table} {ws.id}: {kind} {info} failed: '
                              f'{type(exc).__name__}')

    # --- raw access for tests and tools ------------------------------------
    def write_raw(self, table, obj_id, data):
        """Write bytes straight into an object znode, bypassing the API
        (listed as a member of the shared feed, so subscribers see it)."""
        self.ensure_table(table)
        self.client.ensure_path(f'{self.ensure_feed("").members}/'
                                f'{table}:{obj_id}')
        self.client.ensure_path(self.layout.obj(table, obj_id))
        self.client.set(self.layout.obj(table, obj_id), data)
