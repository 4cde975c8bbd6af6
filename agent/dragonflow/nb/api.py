"""The NB API: create/update/delete/get/list of model objects and
subscriptions to their changes, over the ZooKeeper store.

Every write validates completely before anything is sent (field types,
cross-field rules, references and constraints against other objects), then
commits the object, its references, its unique keys and its change-log
entry in one ZooKeeper transaction. Updates are compare-and-set on the
object version. References are enforced by the store's ``refs`` nodes: a
write naming a missing object fails, and deleting an object still in use
fails unless ``cascade`` is asked for (references declared
``on_delete='clear'``, like a floating IP's port, are cleared instead).
"""
import logging
import random
import time

from kazoo import exceptions as kz

from dragonflow import errors
from dragonflow.model import base
from dragonflow.model import fields
from dragonflow.nb import changes
from dragonflow.store import zk

LOG = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
# Bytes of object bodies and log entries per bulk transaction: well under
# ZooKeeper's request limit (jute.maxbuffer, 1 MB by default).
BULK_BYTES = 400 * 1024


def _backoff(attempt):
    """Jittered pause before retrying a write that lost a race."""
    time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** attempt)))


class View:
    """Read access for model hooks during one write (reads are cached)."""

    def __init__(self, nb):
        self._nb = nb
        self._cache = {}
        self.cursors = {}       # allocation cursors (model.allocate_ip)
        self._referrers = {}

    def get(self, table, obj_id):
        key = (table, obj_id)
        if key not in self._cache:
            try:
                self._cache[key] = self._nb.get(table, obj_id)
            except (errors.NotFound, errors.CorruptObject):
                self._cache[key] = None
        return self._cache[key]

    def referrers(self, table, obj_id, of_table):
        key = (table, obj_id)
        if key not in self._referrers:
            self._referrers[key] = self._nb.referrer_ids(table, obj_id)
        return [obj for obj in (self.get(t, i) for t, i in
                                self._referrers[key]
                                if t == of_table) if obj is not None]

    def seed(self, obj):
        """Take obj as read (write_many's ``known``)."""
        self._cache[(obj.table, obj.id)] = obj

    def index_keys(self, index, prefix):
        """The keys under prefix of a unique index, as a set."""
        return set(self._nb.store.index_keys(index, prefix))

    def check_references(self, obj, old=None):
        """Name the field of a reference to a missing object (the store
        enforces references atomically too; this gives the better message)
        or to an object of another topic: an object may refer only to its
        own topic and to shared objects (empty topic), so that following
        the feeds of a port's topic and the shared one gives a chassis
        everything the port refers to. References old (the object before
        an update) already had were checked when it was written and are
        held by the store since (a policy of 1,000 rules updated reads only
        its new rules)."""
        known = {(t, i) for _, t, i, _ in old.field_references()} \
            if old is not None else set()
        for name, table, ref_id, enforced in obj.field_references():
            if (table, ref_id) in known:
                continue
            target = self.get(table, ref_id)
            if target is None:
                if enforced:
                    obj.fail(name, f'{table} {ref_id} does not exist')
            elif target.topic and target.topic != obj.topic:
                obj.fail(name, f'{table} {ref_id} belongs to topic '
                         f'{target.topic!r}; an object of topic '
                         f'{obj.topic!r} may refer only to its own topic or '
                         'to shared objects (empty topic)')


class BatchView(View):
    """A View shared by the writes of one bulk commit: reads and index
    listings are cached, and the unique keys earlier writes of the batch
    claim count as taken (so allocations do not collide)."""

    def __init__(self, nb):
        super().__init__(nb)
        self._index = {}
        self.claimed = {}        # (index, key) -> owner in the batch
        self.planned = {}        # (table, id) -> object written earlier

    def get(self, table, obj_id):
        found = self.planned.get((table, obj_id))
        return found if found is not None else super().get(table, obj_id)

    def index_keys(self, index, prefix):
        if (index, prefix) not in self._index:
            self._index[(index, prefix)] = super().index_keys(index, prefix)
        return self._index[(index, prefix)]

    def claim(self, obj, keys):
        """Record keys claimed by obj; UniqueConflict if another write of
        the batch claimed one."""
        for index, key in keys:
            owner = self.claimed.get((index, key))
            if owner is not None and owner != f'{obj.table}:{obj.id}':
                raise errors.UniqueConflict(index, key.split('/')[-1],
                                            owner, obj.table)
        for index, key in keys:
            self.claimed[(index, key)] = f'{obj.table}:{obj.id}'
            prefix, _, leaf = key.rpartition('/')
            if (index, prefix) in self._index:
                self._index[(index, prefix)].add(leaf)


def _enforced_refs(obj):
    return sorted({(t, i) for t, i, enforced in obj.references() if enforced})


class NbApi:
    """NB API on a started KazooClient."""

    def __init__(self, client, root='/dragonflow', changelog_max_entries=10000,
                 changelog_retention=3600.0, trim_every=100):
        self.client = client
        self.store = zk.ZkStore(client, root)
        self.changelog_max_entries = changelog_max_entries
        self.changelog_retention = changelog_retention
        self.trim_every = trim_every
        self._writes = 0
        self._last_age_trim = time.monotonic()
        self.store.ensure_layout(base.tables())
        if not self.store.feeds_listed():
            self._list_in_feeds()

    def _list_in_feeds(self):
        """Once per store: list every object in its feed (NB data written
        before feeds existed). Idempotent, so processes starting together
        may all run it."""
        view = View(self)
        added = sum(self.store.add_member(obj.feed_topic(view), table, obj.id)
                    for table in base.tables() for obj in self.list(table))
        self.store.mark_feeds_listed()
        if added:
            LOG.info('listed %d existing NB objects in their feeds', added)

    @classmethod
    def from_conf(cls, conf, handler=None):
        """Connect as configured ([df] options); raises NbUnavailable."""
        client = zk.client_from_conf(conf, handler=handler)
        zk.start_client(client, conf.df.zk_connect_timeout,
                        ','.join(conf.df.remote_db_hosts))
        try:
            return cls(client, conf.df.nb_root,
                       conf.df.changelog_max_entries,
                       conf.df.changelog_retention)
        except kz.NoAuthError:
            client.stop()
            raise errors.NbUnavailable(
                f'ZooKeeper refused to set up {conf.df.nb_root}: not '
                'authorised (check [df] zk_auth)') from None

    def close(self):
        self.client.stop()
        self.client.close()

    # --- reads -----------------------------------------------------------
    def get(self, table, obj_id):
        cls = base.model_for(table)
        data, stat = self._raw(table, obj_id)
        try:
            return cls.from_json(data, stat.version)
        except errors.ValidationError as e:
            raise errors.CorruptObject(f'{table} {obj_id}: {e}') from None

    def _raw(self, table, obj_id):
        """An object's stored (bytes, stat); NotFound if there is none."""
        # Not an id (a name such as '..' or 'a/b'): no object has it, and
        # it must not reach the store as a path component.
        raw = self.store.get_raw(table, obj_id) if fields.is_id(obj_id) \
            else None
        if raw is None:
            raise errors.NotFound(table, obj_id)
        return raw

    def list(self, table, skipped=None, **filters):
        """All objects of a table, optionally where field == value. Objects
        whose stored body is invalid are logged and skipped (and appended
        to ``skipped`` as (id, reason) when it is given)."""
        cls = base.model_for(table)
        out = []
        for obj_id, data, stat in self.store.get_many_raw(
                table, self.store.ids(table)):
            try:
                obj = cls.from_json(data, stat.version)
            except errors.ValidationError as e:
                LOG.warning('skipping invalid %s %s: %s', table, obj_id, e)
                if skipped is not None:
                    skipped.append((obj_id, str(e)))
                continue
            if all(getattr(obj, k) == v for k, v in filters.items()):
                out.append(obj)
        return out

    def referrer_ids(self, table, obj_id):
        """(table, id) of the objects holding an enforced reference to it."""
        return [tuple(name.split(':', 1))
                for name in self.store.referrers(table, obj_id)]

    # --- writes ----------------------------------------------------------
    def create(self, table, data):
        """Create an object from a dict (or a model instance); returns it.
        An object that comes with others (its model's ``create_plan``: a
        load balancer and its VIP port) is created with them in one
        transaction."""
        if isinstance(data, base.Model):
            data = data.to_dict()
        cls = base.model_for(table)
        if cls.create_plan is not base.Model.create_plan:
            plan = cls.from_dict(dict(data), table).create_plan(View(self))
            if plan:
                return self.write_many(plan)[-1]
        return self._write(cls, data)

    def update(self, obj):
        """Write a modified object. Compare-and-set: ``obj.version`` must be
        the version it was read at, else StaleVersion."""
        if obj.version is None:
            raise errors.ValidationError(f'{obj.table} {obj.id}: update needs '
                                         'the version read (compare-and-set)')
        old = self.get(obj.table, obj.id)
        if old.version != obj.version:
            raise errors.StaleVersion(obj.table, obj.id, obj.version)
        return self._update(old, obj.to_dict())

    def patch(self, table, obj_id, changes_, version=None):
        """Change some fields of an object (read-modify-write, CAS).
        With ``version`` the write fails if the object is not at it;
        without, a concurrent write makes it read again and retry."""
        for attempt in range(MAX_ATTEMPTS):
            old = self.get(table, obj_id)
            if version is not None and old.version != version:
                raise errors.StaleVersion(table, obj_id, version)
            data = old.to_dict()
            data.update(changes_)
            try:
                return self._update(old, data)
            except errors.StaleVersion:
                if version is not None:
                    raise
                _backoff(attempt)
        raise errors.NbError(f'{table} {obj_id}: gave up after '
                             f'{MAX_ATTEMPTS} attempts (concurrent writes)')

    def _update(self, old, data):
        return self._write(type(old), self._update_data(old, data), old)

    @staticmethod
    def _update_data(old, data):
        """data for an update of old: immutable fields left unset are
        kept, changed ones refused."""
        cls = type(old)
        table = cls.table
        for name, field in cls.fields().items():
            if field.immutable:
                if data.get(name) is None:
                    data[name] = old.to_dict().get(name)
                elif data[name] != old.to_dict().get(name):
                    normalized = field.check(data[name], f'{table}.{name}')
                    if normalized != old.to_dict().get(name):
                        raise errors.ValidationError(
                            f'{table}.{name}: cannot be changed '
                            f'(is {old.to_dict().get(name)!r})')
        return data

    def _write(self, cls, data, old=None):
        """Validate and commit a create (old is None) or an update of old
        (compare-and-set on its version). A collision on a value the model
        allocated itself, or a lost guard race, makes it start over."""
        for _ in range(MAX_ATTEMPTS):
            obj, ws = self._write_set(cls, data, old, View(self))
            try:
                self._commit(ws)
            except errors.UniqueConflict as e:
                if e.index in obj.allocated():
                    continue        # our own random pick collided: pick again
                raise
            except errors.Contention:
                continue
            obj._version = ws.new_version()
            return obj
        raise errors.NbError(f'{cls.table}: gave up after {MAX_ATTEMPTS} '
                             'attempts (allocation or concurrency conflicts)')

    def _write_set(self, cls, data, old, view):
        """Validate a create (old is None) or an update of old; the object
        and the WriteSet committing it."""
        table = cls.table
        action = 'create' if old is None else 'update'
        old_refs = set(_enforced_refs(old)) if old else set()
        old_keys = set(old.unique_keys()) if old else set()
        obj = cls.from_dict(dict(data), table)
        obj._version = old.version if old else None
        guards = self.store.guard_versions(obj.guards())
        obj.prepare(view)
        obj.validate()
        view.check_references(obj, old)
        obj.check_in_store(view, old)
        data = obj.to_dict()
        ws = zk.WriteSet(action, table, obj.id, body=base.encode(data),
                         version=old.version if old else -1,
                         topic=obj.topic, feed=obj.feed_topic(view))
        ws.log_object = data
        new_refs, new_keys = set(_enforced_refs(obj)), set(obj.unique_keys())
        ws.add_refs = sorted(new_refs - old_refs)
        ws.del_refs = sorted(old_refs - new_refs)
        ws.add_keys = sorted(new_keys - old_keys)
        ws.del_keys = sorted(old_keys - new_keys)
        ws.guards = guards
        return obj, ws

    # --- bulk writes -----------------------------------------------------
    def write_many(self, writes, max_bytes=BULK_BYTES, known=()):
        """Create and update many objects in few ZooKeeper transactions.

        ``writes``: ``('create', table, data)`` and ``('patch', table, id,
        changes)`` (``changes`` a dict of fields; a patch of a missing
        object raises NotFound). Every write is validated as by
        create/patch, all of them before anything is sent (a bad one
        raises, naming it, with nothing written); then they are committed
        in transactions of up to ``max_bytes``, in order, each atomic.
        Unique keys are checked across the batch too (two new ports never
        get one address). A transaction that loses a race (a concurrent
        write of the same object, or an allocation taken meanwhile) is
        written again one object at a time, with the usual retries; a
        transaction refused for another reason raises its error, the
        earlier transactions staying committed (so a batch that failed
        half-way can be sent again: creates that went through will then
        be refused as existing, which ``dfctl apply`` skips). Returns the
        objects written, in order.

        ``known``: objects, with their versions, the caller already holds
        (an agent's replica): a patch of one of them starts from it, and
        the checks that would read one (a reference's topic, the feed of
        a port's network) use it, so a write needs no read before its
        transaction. Only for checks that cannot go stale, as topics and
        feeds cannot (they are immutable): a patched object that changed
        meanwhile fails its compare-and-set and is written again from a
        fresh read, as any race."""
        writes = list(writes)
        known = {(obj.table, obj.id): obj for obj in known
                 if obj.version is not None}
        olds = self._read_for_patches(
            [w for w in writes if w[0] != 'patch' or (w[1], w[2]) not in
             known])
        view = BatchView(self)
        for key, obj in known.items():
            olds.setdefault(key, obj)
            view.seed(obj)
        planned = []            # (write, obj, ws)
        for write in writes:
            action, table = write[0], write[1]
            cls = base.model_for(table)
            try:
                if action == 'create':
                    data = write[2]
                    if isinstance(data, base.Model):
                        data = data.to_dict()
                    old = None
                elif action == 'patch':
                    old = olds[(table, write[2])]
                    data = old.to_dict()
                    data.update(write[3])
                    data = self._update_data(old, data)
                else:
                    raise ValueError(f'unknown bulk action {action!r}')
                for _ in range(MAX_ATTEMPTS):
                    obj, ws = self._write_set(cls, data, old, view)
                    try:
                        view.claim(obj, ws.add_keys)
                        break
                    except errors.UniqueConflict as e:
                        if e.index not in obj.allocated():
                            raise
                else:
                    raise errors.NbError(f'{table}: could not allocate '
                                         'unique values in the batch')
            except errors.NbError as e:
                # Which write, for callers mapping it back to their input.
                e.index, e.detail = len(planned), str(e)
                e.args = (f'write {len(planned) + 1} of {len(writes)} '
                          f'({action} {table}): {e}',)
                raise
            planned.append((write, obj, ws))
            view.planned[(obj.table, obj.id)] = obj
        out = []
        for chunk in self._chunks(planned, max_bytes):
            out += self._commit_chunk(chunk)
        return out

    def _read_for_patches(self, writes):
        """The current objects of the patches, read in one pipeline per
        table."""
        wanted = {}
        for write in writes:
            if write[0] == 'patch':
                wanted.setdefault(write[1], []).append(write[2])
        olds = {}
        for table, ids in wanted.items():
            cls = base.model_for(table)
            for obj_id, data, stat in self.store.get_many_raw(table, ids):
                try:
                    olds[(table, obj_id)] = cls.from_json(data, stat.version)
                except errors.ValidationError as e:
                    raise errors.CorruptObject(f'{table} {obj_id}: {e}') \
                        from None
            for obj_id in ids:
                if (table, obj_id) not in olds:
                    raise errors.NotFound(table, obj_id)
        return olds

    @staticmethod
    def _chunks(planned, max_bytes):
        """Transactions of up to max_bytes, each writing an object at most
        once (its entries would share one zxid, and subscribers apply one
        write per object and zxid)."""
        # The log nodes' copies of their newest entries, then per write:
        # the body, twice the log entry (global log and feed), paths; a
        # delete has no body but logs the whole old object.
        reserved = zk.CARRIED_ENTRY_BYTES
        chunk, size, owners = [], reserved, set()
        for item in planned:
            ws = item[2]
            cost = (len(ws.body) * 3 if ws.body else
                    len(ws.log_entry()) * 2) + 512
            if chunk and (size + cost > max_bytes or ws.owner in owners):
                yield chunk
                chunk, size, owners = [], reserved, set()
            chunk.append(item)
            owners.add(ws.owner)
            size += cost
        if chunk:
            yield chunk

    def _commit_chunk(self, chunk):
        try:
            self.store.commit_many([ws for _, _, ws in chunk])
        except (errors.Contention, errors.StaleVersion,
                errors.UniqueConflict) as e:
            if isinstance(e, errors.UniqueConflict) and e.index not in \
                    next(obj for _, obj, ws in chunk
                         if ws is getattr(e, 'write', None)).allocated():
                raise
            LOG.info('bulk write of %d objects lost a race (%s); writing '
                     'them one at a time', len(chunk), e)
            return [self._write_one(write) for write, _, _ in chunk]
        self._wrote(len(chunk), chunk[-1][2].feed)
        out = []
        for _, obj, ws in chunk:
            obj._version = ws.new_version()
            out.append(obj)
        return out

    def _write_one(self, write):
        if write[0] == 'create':
            return self.create(write[1], write[2])
        return self.patch(write[1], write[2], write[3])

    def delete(self, table, obj_id, version=None, cascade=False):
        """Delete an object. Refused while other objects refer to it, unless
        their reference is cleared on delete or ``cascade`` is set (then
        they are deleted too, recursively). Everything (clears, cascaded
        deletes, the object) is one transaction: a refused delete (an
        object still referenced, a corrupted referrer, a concurrent change)
        leaves the store as it was. A cascade too big for one transaction
        is split, referrers first, so each transaction leaves a consistent
        store and running the delete again finishes it (the error says
        so). With ``version`` the delete fails if the object is not at it;
        without, a concurrent write makes it read again and retry."""
        for attempt in range(MAX_ATTEMPTS):
            old = self.get(table, obj_id)
            if version is not None and old.version != version:
                raise errors.StaleVersion(table, obj_id, version)
            plan = self._delete_plan(old, cascade)
            gone = {(ws.table, ws.id) for ws in plan
                    if ws.action == 'delete'}
            for ref in old.owned():
                if ref in gone:
                    continue
                try:
                    owned = self.get(*ref)
                except errors.NotFound:
                    continue
                plan += self._delete_plan(owned, False, gone)
            try:
                self._commit_plan(plan)
                return old
            except (errors.Contention, errors.StaleVersion) as e:
                if getattr(e, 'committed', 0) or (
                        version is not None and
                        isinstance(e, errors.StaleVersion)):
                    raise
                _backoff(attempt)
        raise errors.NbError(f'{table} {obj_id}: gave up after '
                             f'{MAX_ATTEMPTS} attempts (concurrent writes)')

    def force_delete(self, table, obj_id):
        """Remove an object whose stored body is invalid (written around
        the API, or damaged): its node, the references it holds, the
        unique keys it owns and its feed membership, found without its
        body, in one transaction with a change-log entry, so agents that
        hold its last valid form drop it. Refused for a valid object (use
        delete) and while other objects refer to it."""
        cls = base.model_for(table)
        data, stat = self._raw(table, obj_id)
        try:
            cls.from_json(data, stat.version)
        except errors.ValidationError:
            pass
        else:
            raise errors.ValidationError(
                f'{table} {obj_id} is valid: delete it without --force')
        blocking = self.referrer_ids(table, obj_id)
        if blocking:
            raise errors.StillReferenced(table, obj_id,
                                         [f'{t}:{i}' for t, i in blocking])
        refs, keys, topics = self.store.traces(table, obj_id)
        if len(topics) != 1:
            raise errors.NbError(f'{table} {obj_id}: listed in {len(topics)} '
                                 'feeds, expected one; not removed')
        ws = zk.WriteSet('delete', table, obj_id, version=stat.version,
                         topic=topics[0])
        ws.del_refs, ws.del_keys = refs, keys
        self._commit(ws)
        LOG.warning('removed %s %s with an invalid body (%d references, %d '
                    'unique keys)', table, obj_id, len(refs), len(keys))
        return ws

    def _delete_plan(self, target, cascade, gone=()):
        """The WriteSets deleting target: referrers whose reference clears
        patched, others deleted (with cascade; else StillReferenced), each
        object after everything that refers to it; referrers in ``gone``
        are deleted by an earlier part of the same plan."""
        deleting = {(target.table, target.id): target}
        patches = {}            # (table, id) -> (old, changes)
        referrers = {}          # (table, id) -> [(table, id)]
        blocking = []
        queue = [target]
        while queue:
            obj = queue.pop()
            key = (obj.table, obj.id)
            referrers[key] = []
            for ref in self.referrer_ids(obj.table, obj.id):
                if ref in gone:
                    continue
                if ref in deleting:
                    referrers[key].append(ref)
                    continue
                try:
                    referrer = self.get(*ref)
                except errors.NotFound:
                    continue
                cleared = _clear_reference(referrer, obj)
                if cleared is not None:
                    old, changes = patches.get(ref, (referrer, {}))
                    changes.update(cleared)
                    patches[ref] = (old, changes)
                elif cascade:
                    patches.pop(ref, None)
                    deleting[ref] = referrer
                    queue.append(referrer)
                else:
                    blocking.append(f'{ref[0]}:{ref[1]}')
                    continue
                referrers[key].append(ref)
        if blocking:
            raise errors.StillReferenced(target.table, target.id, blocking)
        order, done = [], set()

        def emit(key):
            if key in done:
                return
            done.add(key)
            for ref in referrers.get(key, ()):
                emit(ref)
            order.append(key)
        emit((target.table, target.id))
        view = View(self)
        plan = []
        for key in order:
            if key in patches:
                old, changes = patches[key]
                data = old.to_dict()
                data.update(changes)
                plan.append(self._write_set(
                    type(old), self._update_data(old, data), old, view)[1])
            else:
                plan.append(self._delete_set(deleting[key], view))
        return plan

    @staticmethod
    def _delete_set(old, view):
        ws = zk.WriteSet('delete', old.table, old.id, version=old.version,
                         topic=old.topic, feed=old.feed_topic(view))
        ws.log_object = old.to_dict()
        ws.del_refs = _enforced_refs(old)
        ws.del_keys = list(old.unique_keys())
        return ws

    def _commit_plan(self, plan, max_bytes=BULK_BYTES):
        """Commit WriteSets in order in as few transactions as fit; an
        error after the first one says how far it got (``committed``)."""
        chunks = list(self._chunks([(None, None, ws) for ws in plan],
                                   max_bytes))
        committed = 0
        for chunk in chunks:
            try:
                self.store.commit_many([ws for _, _, ws in chunk])
            except errors.NbError as e:
                if committed:
                    e.committed = committed
                    e.args = (f'{e} ({committed} of {len(plan)} objects '
                              'written in earlier transactions; run the '
                              'delete again to finish it)',)
                raise
            committed += len(chunk)
            self._wrote(len(chunk), chunk[-1][2].feed)

    def _commit(self, ws):
        position = self.store.commit(ws)
        self._wrote(1, ws.feed)
        return position

    def _wrote(self, count, topic):
        """Count committed writes; each time the count passes a multiple
        of trim_every, trim the logs (topic: the feed just written)."""
        before, self._writes = self._writes, self._writes + count
        if before // self.trim_every != self._writes // self.trim_every:
            self._maybe_trim(topic)

    def _maybe_trim(self, topic):
        """Trim the global log and the feed of the topic just written when
        they are over ``changelog_max_entries``, and every feed when the
        oldest entries may have aged out."""
        layout = self.store.layout
        try:
            age_due = (time.monotonic() - self._last_age_trim >
                       self.changelog_retention / 10)
            logs = [layout.global_log, layout.feed(topic)]
            if age_due:
                self._last_age_trim = time.monotonic()
                logs[1:] = [layout.feed(t) for t in self.store.topics()]
            for paths in logs:
                stat = self.client.exists(paths.log)
                if stat and (stat.numChildren > self.changelog_max_entries
                             or age_due):
                    changes.trim(self.store, self.changelog_max_entries,
                                 self.changelog_retention, paths=paths)
        except kz.KazooException as e:
            LOG.info('change log trim skipped: %s', e)

    # --- change stream ---------------------------------------------------
    def subscribe(self, callback, tables=None, topics=None, name=None,
                  feed=None):
        """Start a Subscriber (see dragonflow.nb.changes) and return it;
        with ``feed`` (a topic) it follows that topic's feed only."""
        return changes.Subscriber(self.store, callback, tables=tables,
                                  topics=topics, name=name, feed=feed).start()


def _clear_reference(referrer, target):
    """Field changes that drop every reference from referrer to target, if
    all of them are declared on_delete='clear'; None otherwise."""
    out = {}
    for name, field in referrer.fields().items():
        value = getattr(referrer, name)
        hits = [r for r in field.refs(value) if r[:2] == (target.table,
                                                          target.id)]
        if not hits:
            continue
        ref_field = getattr(field, 'item', field)
        if getattr(ref_field, 'on_delete', 'restrict') != 'clear':
            return None
        out[name] = ([v for v in value if v != target.id]
                     if isinstance(value, list) else None)
    return out or None
