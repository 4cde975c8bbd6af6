"""The flow table's shared (field, value) pairs and action lists follow the
installed flows: those of flows that are gone do not pile up (an agent's
memory stays flat over create/delete cycles); owners are found by identity
whatever object holds it."""
from dragonflow.controller import flows as fl


def port_flows(i):
    return [fl.Flow(5, 100, {'reg6': i, 'eth_src': f'fa:16:3e:00:{i >> 8:02x}:'
                                                   f'{i & 0xff:02x}'}),
            fl.Flow(10, 100, {'reg7': i, 'eth_type': 0x800}, goto=15)]


def test_pairs_of_deleted_flows_do_not_pile_up():
    table = fl.FlowTable()
    sizes = []
    for cycle in range(10):
        ports = range(cycle * 5000, cycle * 5000 + 5000)
        table.update([('l2', i, port_flows(i)) for i in ports])
        table.update([('l2', i, []) for i in ports])
        sizes.append(len(fl._PAIRS))
    # Live at most: one cycle's 15,000 pairs; the cache keeps up to twice
    # what was live at its last pruning, plus a batch. No trend.
    assert max(sizes) <= 3 * 15000, sizes
    assert max(sizes[5:]) <= max(sizes[:5]), sizes


def test_installed_flows_keep_sharing_their_pairs():
    table = fl.FlowTable()
    table.update([('l2', i, port_flows(i)) for i in range(30000)])
    kept = table.flows('l2', 7)
    table._prune_pairs()
    again = fl.Flow(20, 1, {'reg6': 7})
    shared = next(f for f in kept if f.table == 5).match
    assert any(p is again.match[0] for p in shared)


def test_short_action_lists_are_shared_long_ones_are_not_kept():
    a = fl.Flow(10, 1, {'reg6': 1}, [('set_field', 'reg7', 3)], goto=15)
    b = fl.Flow(10, 1, {'reg6': 2}, [('set_field', 'reg7', 3)], goto=15)
    assert a.actions is b.actions
    # A flood list of every port: growing one port at a time, the cache
    # must not keep each past version (quadratic memory).
    before = len(fl._PAIRS)
    for n in range(1, 300):
        fl.Flow(55, 1, {'reg7': 9}, [('output', p) for p in range(n)])
    assert len(fl._PAIRS) - before < 10


def test_owners_by_identity():
    table = fl.FlowTable()
    table.update([('l2', 'a', [fl.Flow(10, 1, {'reg6': 1}, goto=15)])])
    moved = fl.Flow(10, 1, {'reg6': 1}, [('output', 2)])
    assert table.owner(moved) == ('l2', 'a')
    changes = table.update([('l2', 'a', []), ('l3', 'b', [moved])])
    assert changes.adds == [('l3', moved)] and changes.deletes == []
    assert table.owner(moved) == ('l3', 'b')
    refused = table.update([('nat', 'c', [fl.Flow(10, 1, {'reg6': 1})])])
    assert 'owned by app l3' in refused.refused[0].reason
    table.update([('l3', 'b', [])])
    assert table.owner(moved) is None and table._owner._places == {}
