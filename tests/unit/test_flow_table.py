"""The flow table's shared (field, value) pairs follow the installed flows:
pairs of flows that are gone do not pile up (an agent's memory stays flat
over create/delete cycles)."""
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
