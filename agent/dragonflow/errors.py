"""Errors of the NB API. Every message names the object and the field or
key at fault, so ``dfctl`` can print it as the one-line explanation."""


class NbError(Exception):
    """Base of all NB API errors."""


class ValidationError(NbError, ValueError):
    """An object or field is invalid; nothing was written."""


class NotFound(NbError, LookupError):
    def __init__(self, table, obj_id):
        super().__init__(f'{table} {obj_id} does not exist')
        self.table, self.id = table, obj_id


class AlreadyExists(NbError):
    def __init__(self, table, obj_id):
        super().__init__(f'{table} {obj_id} already exists')


class StaleVersion(NbError):
    """Compare-and-set failed: someone else wrote the object first."""

    def __init__(self, table, obj_id, expected):
        super().__init__(f'{table} {obj_id}: version {expected} is stale '
                         '(changed concurrently); read it again and retry')


class Contention(NbError):
    """A serialised write raced with another one; retrying is safe."""


class UniqueConflict(NbError):
    def __init__(self, index, key, owner, table=None):
        what = {'ip': 'IP address', 'mac': 'MAC address',
                'segment': 'segmentation id', 'unique_key': 'datapath key',
                'router_subnet': 'subnet', 'trunk_parent': 'port',
                'trunk_child': 'port', 'trunk_vlan': 'trunk VLAN',
                'ppg_pair': 'port pair', 'chain_group': 'port pair group',
                'chain_classifier': 'flow classifier',
                'fip_fixed': 'port fixed IP'}.get(index, index)
        used = 'attached to a router by' if index == 'router_subnet' \
            else 'used by'
        super().__init__(f'{table + ": " if table else ""}{what} {key} is '
                         f'already {used} {owner}')
        self.index, self.key, self.owner = index, key, owner


class DanglingReference(NbError):
    def __init__(self, table, obj_id, ref_table, ref_id):
        super().__init__(f'{table} {obj_id}: referenced {ref_table} {ref_id} '
                         'does not exist')


class StillReferenced(NbError):
    def __init__(self, table, obj_id, referrers):
        shown = ', '.join(sorted(referrers)[:5])
        more = f' and {len(referrers) - 5} more' if len(referrers) > 5 else ''
        super().__init__(f'{table} {obj_id} is still used by {shown}{more} '
                         '(delete those first, or use cascade)')
        self.referrers = referrers


class NotAuthorized(NbError):
    """ZooKeeper ACLs refused the write (missing or wrong credentials)."""


class NbUnavailable(NbError):
    """ZooKeeper could not be reached or the connection was lost."""


class CorruptObject(NbError):
    """A znode holds something that is not a valid object."""
