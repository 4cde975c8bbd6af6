"""Many znodes in one request (dragonflow.store.multiread) on a real
ZooKeeper: results in order, None for a missing node, chunks, and the
fallback to node-by-node reads for a server that does not know the
request."""
from kazoo import exceptions as kz

from dragonflow.store import multiread


def test_results_come_in_order_with_none_for_a_missing_node(
        zk_client, nb_root):
    paths = []
    for i in range(7):
        zk_client.create(f'{nb_root}/n{i}', str(i).encode(), makepath=True)
        paths.append(f'{nb_root}/n{i}')
    paths.insert(3, f'{nb_root}/missing')
    results = multiread.get_many(zk_client, paths, chunk=3)
    assert len(results) == 8
    assert results[3] is None
    found = [r for r in results if r is not None]
    assert [data for data, _ in found] == [str(i).encode() for i in range(7)]
    assert all(stat.version == 0 and stat.czxid > 0 for _, stat in found)
    assert multiread.get_many(zk_client, []) == []


def test_a_server_without_multiread_is_read_node_by_node(
        zk_client, nb_root, monkeypatch):
    zk_client.create(f'{nb_root}/a', b'A', makepath=True)
    paths = [f'{nb_root}/a', f'{nb_root}/b']
    # An opcode ZooKeeper does not know stands for a server older than
    # 3.6: it answers "unimplemented" (and may drop the connection, which
    # the caller sees as a connection loss, as for any read).
    monkeypatch.setattr(multiread.MultiRead, 'type', 99)
    try:
        multiread.get_many(zk_client, paths)
    except kz.ConnectionLoss:
        pass
    assert zk_client._df_multiread is False
    zk_client.retry(zk_client.exists, nb_root)     # reconnected
    results = multiread.get_many(zk_client, paths)
    assert results[0][0] == b'A'
    assert results[1] is None
