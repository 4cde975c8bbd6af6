"""Which log-node touches of a transaction carry their entry
(dragonflow.store.zk._carry_newest_entries)."""
from dragonflow.store import zk


def touch(log, entry):
    return ('log', None, 'set_data', (log, entry), {})


def carried(ops):
    zk._carry_newest_entries(ops)
    return [op[3][1] for op in ops]


def test_the_last_touch_of_each_log_carries_its_entry():
    ops = [touch('/a', b'a1'), ('object', None, 'create', ('/o', b'x'), {}),
           touch('/b', b'b1'), touch('/a', b'a2')]
    assert carried(ops) == [b'', b'x', b'b1', b'a2']


def test_entries_beyond_the_budget_are_not_carried():
    big = b'x' * (zk.CARRIED_ENTRY_BYTES - 10)
    ops = [touch('/a', b'y' * 20), touch('/b', big)]
    assert carried(ops) == [b'', big]
    assert carried([touch('/a', b'y' * (zk.CARRIED_ENTRY_BYTES + 1))]) == \
        [b'']
