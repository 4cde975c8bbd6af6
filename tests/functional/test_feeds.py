"""Topic feeds and selective distribution against a real ZooKeeper: a
subscriber of a topic's feed (and so a chassis) reads only that topic's
objects, resyncs from the topic's members, and forgets a topic it no
longer needs; references across topics are refused."""
import threading
import time

from dragonflow.controller.selection import Selection
from dragonflow.nb import changes
from dragonflow.nb.api import NbApi
from dragonflow.store import zk

from test_nb_api import assert_refused
from waiting import wait_until
from workload import Recorder, replica_state, store_state

FOLLOWED = ['chassis', 'logical_switch', 'logical_port']


def wait_for(predicate, timeout=10):
    return wait_until(predicate, timeout, interval=0.02)


def topics_of(recorder):
    return {obj.get('topic') or '' for obj in recorder.state.values()}


def feed_entries(nb, topic):
    return len(nb.client.get_children(nb.store.layout.feed(topic).log))


def members(nb, topic):
    return sorted(nb.client.get_children(nb.store.layout.feed(topic).members))


def tenant(nb, topic, ports=2):
    net = nb.create('logical_switch', {'name': f'net-{topic}',
                                       'topic': topic})
    return net, [nb.create('logical_port', {'network_id': net.id,
                                            'topic': topic})
                 for _ in range(ports)]


def test_each_write_goes_to_its_topic_feed_and_the_global_log(nb):
    net, (port, _) = tenant(nb, 'tenant-a')
    shared = nb.create('logical_switch', {'name': 'shared'})
    assert members(nb, 'tenant-a') == sorted(
        [f'logical_switch:{net.id}'] +
        [f'logical_port:{p.id}' for p in nb.list('logical_port')])
    assert members(nb, '') == [f'logical_switch:{shared.id}']
    nb.delete('logical_port', port.id)
    assert f'logical_port:{port.id}' not in members(nb, 'tenant-a')
    assert feed_entries(nb, 'tenant-a') == 4 and feed_entries(nb, '') == 1
    assert len(nb.client.get_children(nb.store.layout.log)) == 5
    assert sorted(nb.store.topics()) == ['', 'tenant-a']


def test_ports_and_subnets_go_to_their_networks_feed(nb):
    """A tenant's port on a shared network is distributed with the network
    (every chassis with a port there sees it); its own objects with its
    topic."""
    shared = nb.create('logical_switch', {'name': 'shared'})
    subnet = nb.create('subnet', {'network_id': shared.id,
                                  'cidr': '10.9.0.0/24', 'topic': 'tenant-b'})
    group = nb.create('security_group', {'topic': 'tenant-b'})
    port = nb.create('logical_port', {'network_id': shared.id,
                                      'topic': 'tenant-b',
                                      'security_groups': [group.id]})
    assert members(nb, '') == sorted([
        f'logical_switch:{shared.id}', f'subnet:{subnet.id}',
        f'logical_port:{port.id}'])
    assert members(nb, 'tenant-b') == [f'security_group:{group.id}']
    seen = Recorder()
    sub = nb.subscribe(seen, feed='')
    try:
        assert sub.wait_synced(10)
        wait_for(lambda: ('logical_port', port.id) in seen.state)
        nb.delete('logical_port', port.id)
        wait_for(lambda: ('logical_port', port.id) not in seen.state)
        assert f'logical_port:{port.id}' not in members(nb, '')
    finally:
        sub.stop()


def test_a_feed_subscriber_reads_nothing_of_other_topics(nb):
    tenant(nb, 'tenant-a')
    tenant(nb, 'tenant-b')
    seen = Recorder()
    sub = nb.subscribe(seen, tables=FOLLOWED, feed='tenant-a')
    try:
        assert sub.wait_synced(10)
        wait_for(lambda: len(seen.state) == 3)
        assert topics_of(seen) == {'tenant-a'}
        time.sleep(0.3)     # its first catch-up after the sync
        reads, delivered = sub.reads, sub.delivered
        for i in range(50):
            nb.create('logical_switch', {'name': f'b{i}', 'topic': 'tenant-b'})
        nb.create('chassis', {'id': 'ch1', 'ip': '192.0.2.1'})
        time.sleep(0.5)
        # Another topic's writes do not even wake it.
        assert (sub.reads, sub.delivered) == (reads, delivered)
        net = nb.create('logical_switch', {'name': 'a2', 'topic': 'tenant-a'})
        wait_for(lambda: ('logical_switch', net.id) in seen.state)
        assert sub.reads - reads < 10
    finally:
        sub.stop()


def test_a_feed_subscriber_behind_its_trimmed_horizon_resyncs(nb):
    gate = threading.Event()
    seen = Recorder()

    def slow(change):
        gate.wait()
        seen(change)
    sub = nb.subscribe(slow, feed='tenant-a')
    try:
        nb.create('logical_switch', {'name': 'first', 'topic': 'tenant-a'})
        time.sleep(0.2)
        for i in range(150):
            nb.create('logical_switch', {'name': f'n{i}', 'topic': 'tenant-a'})
        nb.delete('logical_switch', nb.list('logical_switch', name='n5')[0].id)
        paths = nb.store.layout.feed('tenant-a')
        assert changes.trim(nb.store, 50, 3600, paths=paths) >= 100
        assert changes.read_horizon(nb.client, paths)[0] > 100
        gate.set()
        wait_for(lambda: replica_state(sub) == store_state(
            nb, ['logical_switch']) == seen.state, timeout=20)
        assert sub.resyncs >= 2
    finally:
        gate.set()
        sub.stop()


def test_release_forgets_the_topic(nb):
    _, ports = tenant(nb, 'tenant-a')
    seen = Recorder()
    sub = nb.subscribe(seen, feed='tenant-a')
    assert sub.wait_synced(10)
    wait_for(lambda: len(seen.state) == 3)
    sub.release()
    assert seen.state == {} and sub.objects == {}


def test_references_across_topics_are_refused(nb):
    net_a, (port_a, _) = tenant(nb, 'tenant-a')
    shared = nb.create('logical_switch', {'name': 'shared'})
    # Own topic and shared objects are fine.
    nb.create('logical_port', {'network_id': shared.id, 'topic': 'tenant-b'})
    assert_refused(nb, 'logical_port', {'network_id': net_a.id,
                                        'topic': 'tenant-b'},
                   "network_id: logical_switch .* belongs to topic "
                   "'tenant-a'; an object of topic 'tenant-b' may refer only")
    assert_refused(nb, 'logical_port', {'network_id': net_a.id},
                   "network_id: .* belongs to topic 'tenant-a'")


def test_existing_objects_are_listed_in_their_feeds_once(nb, zk_server,
                                                         nb_root):
    _, ports = tenant(nb, 'tenant-a')
    lay = nb.store.layout
    nb.client.delete(lay.feeds, recursive=True)   # data from before feeds
    nb.client.create(lay.feeds)
    client = zk.make_client(zk_server.address)
    client.start(timeout=10)
    try:
        NbApi(client, nb_root)
        assert len(members(nb, 'tenant-a')) == 3
        assert nb.client.get(lay.feeds)[0] == zk.ZkStore.FEEDS_FORMAT
    finally:
        client.stop()
        client.close()


def test_selection_follows_the_topics_of_local_ports(nb):
    """What the local controller uses: the shared feed always, a topic's
    feed while a local interface names one of its ports."""
    _, (port_a, _) = tenant(nb, 'tenant-a')
    tenant(nb, 'tenant-b')
    nb.create('chassis', {'id': 'ch1', 'ip': '192.0.2.1'})
    seen = Recorder()
    selection = Selection(nb, seen, FOLLOWED, name='test').start()
    try:
        selection.interface('vm1', port_a.id)
        assert selection.wait_synced(10)
        # Synced means the local ports' topics too (the agent's first full
        # sync waits for this): no waiting here.
        assert selection.topics() == ['', 'tenant-a']
        assert len(seen.state) == 4 and ('logical_port', port_a.id) in \
            seen.state
        assert topics_of(seen) == {'', 'tenant-a'}

        # An iface-id that is not in NB yet: followed once it is created.
        selection.interface('vm2', 'later')
        assert selection.wait_synced(10)
        assert selection.topics() == ['', 'tenant-a']
        net_c = nb.create('logical_switch', {'name': 'c', 'topic': 'tenant-c'})
        nb.create('logical_port', {'id': 'later', 'network_id': net_c.id,
                                   'topic': 'tenant-c'})
        wait_for(lambda: selection.topics() == ['', 'tenant-a', 'tenant-c'])
        wait_for(lambda: ('logical_port', 'later') in seen.state)

        # The last local port of a topic leaves: its objects go.
        selection.interface('vm1', None)
        wait_for(lambda: selection.topics() == ['', 'tenant-c'])
        wait_for(lambda: topics_of(seen) ==
                 {'', 'tenant-c'})
    finally:
        selection.stop()


class CountingReads:
    """Counts the port znode reads a Selection sends (the real client's
    calls, passed through)."""

    def __init__(self, client):
        self.client, self.paths = client, []
        self.get_async = self._counted(client.get_async)
        self.exists_async = self._counted(client.exists_async)

    def _counted(self, call):
        def counted(path, *args, **kwargs):
            self.paths.append(path)
            return call(path, *args, **kwargs)
        return counted

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_selection_takes_a_delivered_ports_topic_from_its_feed(nb):
    """A port the followed feeds have delivered (created before it is
    plugged) costs no ZooKeeper read, nor does its binding being written;
    its deletion (from the feed) is noticed and its re-creation too."""
    shared = nb.create('logical_switch', {'name': 'shared'})
    port = nb.create('logical_port', {'network_id': shared.id,
                                      'topic': 'tenant-a'})
    nb.create('chassis', {'id': 'ch1', 'ip': '192.0.2.1'})
    seen = Recorder()
    selection = Selection(nb, seen, FOLLOWED, name='test')
    reads = CountingReads(nb.client)
    selection.nb = type('Nb', (), {'client': reads, 'store': nb.store,
                                   'subscribe': nb.subscribe})()
    selection.start()
    try:
        assert selection.wait_synced(10)
        wait_for(lambda: ('logical_port', port.id) in seen.state)
        selection.interface('vm1', port.id)
        wait_for(lambda: selection.topics() == ['', 'tenant-a'])
        assert selection.wait_synced(10)
        nb.patch('logical_port', port.id, {'binding_chassis': 'ch1'})
        wait_for(lambda: seen.state[('logical_port', port.id)].get(
            'binding_chassis') == 'ch1')
        assert selection.wait_synced(10)
        assert reads.paths == []

        nb.delete('logical_port', port.id)
        wait_for(lambda: selection.topics() == [''])
        assert len(reads.paths) >= 1          # then watched for creation
        nb.create('logical_port', {'id': port.id, 'network_id': shared.id,
                                   'topic': 'tenant-b'})
        wait_for(lambda: selection.topics() == ['', 'tenant-b'])
    finally:
        selection.stop()
