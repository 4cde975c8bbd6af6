"""Multicast with IGMP/MLD snooping (tables 56 and 101): on a network with
``multicast_snooping``, IP multicast goes only to the ports that joined
its group, on this chassis and on the chassis that have members: one
tunnelled copy per such chassis, none to the others.

**Snooping.** Table 55 hands a snooping network's IP multicast to 56.
There IGMP and MLD messages from local ports go to the controller and no
further (RFC 4541: reports reach the querier, never other hosts, so no
host suppresses its report because it heard another's); the agent learns
joins and leaves of its local ports (``controller/igmp.py`` says what a
message means) and writes the chassis' members of each group to NB: one
``multicast_group`` record per chassis, network and group, written by a
worker thread after a short pause that gathers a burst of reports into
one transaction. Every chassis with ports on the network reads the
records: table 56 sends a group's packets to the local members (each
copy through the receiver's ingress stages, so its security groups
apply) and to each other chassis with a record; table 101 (what arrives
from a tunnel) to the local members only. Link-local groups (224.0.0.0/24,
ff02::/16: ARP-like control traffic, ND) are flooded as before;
unregistered groups are dropped, or flooded with
``multicast_flood_unregistered``.

**Querier: each chassis queries its own ports.** Membership only matters
where the members are, reports never leave the chassis, and a chassis
alone knows when its ports come and go; so there is no election and no
cross-chassis query traffic, and a chassis failing takes only its own
ports' memberships with it. Each local port of a snooping network gets
an IGMPv3 and an MLDv2 general query when it appears (also after an agent
restart) and every ``multicast_query_interval``, from
``multicast_querier_address`` (or the first IPv4 subnet's gateway) and
an EUI-64 link-local address; a member that does not report within
robustness × interval + response time is aged out. A v2 leave (MLDv1
done) gets a group-specific query and the port stays a member for
robustness × last-member interval unless it answers; a v3/MLDv2 record
wanting no source removes the port at once (ports are tracked one by
one, so nobody else's membership depends on it).

**Routed multicast.** A router with ``multicast_relay`` forwards a group
between its snooping subnets: on the sender's chassis (which routes, as
for unicast), after the group's copies on its own network, table 57
drops what has TTL ≤ 1 and otherwise decrements the TTL, sets the
router's MAC on each other subnet and sends copies to that subnet's
members (local ones through their ingress stages, one tunnelled copy per
chassis with members, which table 101 there delivers). One router hop:
relayed copies are not relayed again.

Reports are rate limited per chassis (a token bucket, ``REPORT_RATE``
per second) on top of the bridge's controller rate limit: a flood of
reports costs the agent bounded CPU and never slows forwarding.
"""
import collections
import concurrent.futures
import logging
import threading
import time

from dragonflow import errors
from dragonflow import metrics
from dragonflow.controller import apps
from dragonflow.controller import igmp
from dragonflow.controller import pipeline as pl
from dragonflow.controller import state as state_mod
from dragonflow.controller.apps import l2
from dragonflow.controller.apps import router_icmp
from dragonflow.model import logical_switch as lsm
from dragonflow.model import multicast as mcm

LOG = logging.getLogger(__name__)
MCAST_TABLES = state_mod.MCAST_TABLES
QUERIER_MAC = '02:00:00:00:df:02'   # locally administered, as dhcp's
REPORT_RATE = 200.0     # membership messages handled per second
FLUSH_DELAY = 0.05      # seconds of reports gathered into one NB write
MEMBERSHIP, LINK_LOCAL, GROUP, UNREGISTERED = 100, 90, 80, 70
V4 = (pl.ETH_IP, 'ipv4_dst', ('224.0.0.0', '255.255.255.0'))
V6 = (pl.ETH_IPV6, 'ipv6_dst', ('ff02::', 'ffff::'))


def snooping(network):
    return network is not None and network.multicast_snooping and \
        network.network_type in lsm.TUNNELED


def relay_networks(state, net_id):
    """[(router port, network)]: the other snooping networks of the
    relaying (``multicast_relay``), enabled routers on net_id, by id."""
    out = {}
    for _, router in state.enabled_interfaces(net_id):
        if not router.multicast_relay:
            continue
        for rport in state.router_interfaces(router.id):
            network = state.network(rport.network_id)
            if rport.network_id != net_id and snooping(network):
                out.setdefault(rport.network_id, (rport, network))
    return [out[n] for n in sorted(out)]


def group_membership_interval(network):
    """RFC 3376 8.4: how long a member stays without reporting."""
    return network.multicast_robustness * \
        network.multicast_query_interval + network.multicast_query_response


class Memberships:
    """This chassis' members: {(network id, group): {port id: until}},
    and the groups changed since the last :meth:`take` (what to write to
    NB). Used from the OpenFlow hub (reports, ticks) and the NB writer
    thread: every method holds the lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.groups = collections.defaultdict(dict)
        self.dirty = set()

    def join(self, key, port_id, until):
        with self.lock:
            members = self.groups[key]
            if port_id not in members:
                self.dirty.add(key)
            members[port_id] = until

    def shorten(self, key, port_id, until):
        """A leave: the port stays a member until ``until`` at most."""
        with self.lock:
            members = self.groups.get(key, {})
            if port_id in members:
                members[port_id] = min(members[port_id], until)

    def remove(self, key, port_id):
        with self.lock:
            if self.groups.get(key, {}).pop(port_id, None) is not None:
                self.dirty.add(key)

    def expire(self, now, keep=lambda key, port_id: True):
        """Remove members past their time, and those keep() refuses
        (ports gone from the chassis, networks no longer snooping)."""
        with self.lock:
            for key, members in self.groups.items():
                gone = [p for p, until in members.items()
                        if until <= now or not keep(key, p)]
                for port_id in gone:
                    del members[port_id]
                    self.dirty.add(key)

    def adopt(self, key, port_ids, until):
        """Members this chassis wrote before a restart: kept until they
        report again or age out."""
        with self.lock:
            for port_id in port_ids:
                self.groups[key].setdefault(port_id, until)

    def take(self):
        """{key: sorted member ports} of the changed groups (empty: no
        member left), and forget they changed."""
        with self.lock:
            out = {key: sorted(self.groups.get(key, {}))
                   for key in self.dirty}
            self.dirty.clear()
            for key in [k for k, m in self.groups.items() if not m]:
                del self.groups[key]
            return out

    def mark(self, keys):
        """These groups must be written again (a failed write)."""
        with self.lock:
            self.dirty.update(keys)

    def ports_of(self, key):
        with self.lock:
            return sorted(self.groups.get(key, {}))


class MulticastApp(apps.App):
    name = 'multicast'
    cookie = 20
    packet_ins = {pl.MCAST_LOOKUP: 'membership_message'}

    def __init__(self, controller=None, clock=time.monotonic):
        super().__init__(controller)
        self.clock = clock
        self.members = Memberships()
        self.bucket = router_icmp.TokenBucket(REPORT_RATE, clock)
        self.suppressed = 0
        self.next_query = {}        # local port id -> when to query it
        self.snooped = set()        # networks snooped at the last tick
        self.written = {}           # (net, group) -> ports NB has
        # Records deleted here whose deletion has not come back yet (not
        # to be adopted again in the meantime).
        self.deleted = set()
        self.topics = {}            # network id -> topic (for writes)
        self.flush_pending = False
        self.writer = None          # NB writes, off the OpenFlow hub

    # --- flows -----------------------------------------------------------
    def global_flows(self, state):
        out = [self.flow(pl.MCAST_LOOKUP, 0), self.flow(pl.MCAST_ARRIVAL, 0),
               self.flow(pl.MCAST_RELAY, 0)]
        for eth_type in (pl.ETH_IP, pl.ETH_IPV6):
            # A router forwards nothing whose TTL would reach 0 (and
            # multicast gets no ICMP error): dropped before dec_ttl.
            out += [self.flow(pl.MCAST_RELAY, 100,
                              {'eth_type': eth_type, 'nw_ttl': ttl})
                    for ttl in (0, 1)]
        return out

    def network_flows(self, state, network):
        if not snooping(network):
            return []
        key = network.unique_key
        local = l2.flood_copies(state, state.local_ports(network.id))
        everywhere = local + l2.tunnel_outputs(state, network)
        unregistered = network.multicast_flood_unregistered
        out = []
        for (eth_type, field, link_local), mac in (
                (V4, pl.IPV4_MULTICAST_MAC), (V6, pl.IPV6_MULTICAST_MAC)):
            ip = {'metadata': key, 'eth_type': eth_type}
            out += [
                self.flow(pl.L2_LOOKUP, 60, dict(ip, eth_dst=mac),
                          goto=pl.MCAST_LOOKUP),
                self.flow(pl.INGRESS_TUNNEL, 60, dict(ip, eth_dst=mac),
                          goto=pl.MCAST_ARRIVAL),
                self.flow(pl.MCAST_LOOKUP, LINK_LOCAL,
                          dict(ip, **{field: link_local}), everywhere),
                self.flow(pl.MCAST_ARRIVAL, LINK_LOCAL,
                          dict(ip, **{field: link_local}), local),
                self.flow(pl.MCAST_LOOKUP, UNREGISTERED, ip,
                          everywhere if unregistered else []),
                self.flow(pl.MCAST_ARRIVAL, UNREGISTERED, ip,
                          local if unregistered else [])]
        for match in self._membership_matches(key):
            # Reports and queries: to the snooper, never to other hosts.
            out += [self.flow(pl.MCAST_LOOKUP, MEMBERSHIP, match,
                              [('controller',)]),
                    self.flow(pl.MCAST_ARRIVAL, MEMBERSHIP, match)]
        return out

    @staticmethod
    def _membership_matches(key):
        yield {'metadata': key, 'eth_type': pl.ETH_IP, 'ip_proto': pl.IGMP}
        for kind in igmp.MLD_TYPES:
            yield {'metadata': key, 'eth_type': pl.ETH_IPV6,
                   'ip_proto': pl.ICMPV6, 'icmpv6_type': kind}

    def keys(self, state):
        def compute():
            programmed = state.programmed_networks()
            relays = {}
            out = set()
            for net_id, group in state.mcast_groups:
                # A group's members also make its key on the networks a
                # relaying router joins (their senders reach them).
                if net_id not in relays:
                    relays[net_id] = [n.id for _, n in
                                      relay_networks(state, net_id)]
                nets = [net_id] + relays[net_id]
                out.update(self.key('group', (n, group)) for n in nets
                           if n in programmed and snooping(state.network(n)))
            return out
        return state.derived('mcast_keys', compute)

    def _members(self, state, net_id, group):
        """(local member ports, Chassis of the other chassis with
        members) of a group on a network."""
        records = state.mcast_groups.get((net_id, group), {})
        here = records.get(state.chassis_id)
        members = []
        for port_id in here.ports if here is not None else ():
            port = state.get('logical_port', port_id)
            if port is not None and state.is_local(port):
                members.append(port)
        chassis = [state.chassis(c) for c, record in sorted(records.items())
                   if c != state.chassis_id and record.ports]
        return members, [c for c in chassis if c is not None]

    def key_flows(self, state, key):
        net_id, group = key[2]
        network = state.network(net_id)
        members, chassis = self._members(state, net_id, group)
        local = l2.flood_copies(state, members)
        remote = l2.tunnel_copies(state, network, chassis)
        eth_type, field, _ = V4 if ':' not in group else V6
        match = {'metadata': network.unique_key, 'eth_type': eth_type,
                 field: group}
        relay = []
        for rport, other in relay_networks(state, net_id):
            members, chassis = self._members(state, other.id, group)
            if members or chassis:
                relay += [('set_field', 'metadata', other.unique_key),
                          ('set_field', 'eth_src', rport.mac)] + \
                    l2.flood_copies(state, members) + \
                    l2.tunnel_copies(state, other, chassis)
        out = [self.flow(pl.MCAST_LOOKUP, GROUP, match, local + remote + (
            [('resubmit', pl.MCAST_RELAY)] if relay else [])),
               self.flow(pl.MCAST_ARRIVAL, GROUP, match, local)]
        if relay:
            out.append(self.flow(pl.MCAST_RELAY, GROUP, match,
                                 [('dec_ttl',)] + relay))
        return out

    def touched_keys(self, state, table, obj, old):
        objs = [o for o in (obj, old) if o is not None]
        if table == 'multicast_group':
            return {self.key('group', (n, o.address)) for o in objs
                    for n in [o.network_id] + [
                        n.id for _, n in relay_networks(state, o.network_id)]}
        if table in ('logical_router', 'logical_router_port'):
            return self.keys(state)     # relays (rare changes)
        if table == 'logical_port':
            return {self.key('group', group) for o in objs
                    for group in state.mcast_ports.get(o.id, ())}
        if table == 'chassis':
            ids = {o.id for o in objs}
            return {self.key('group', group)
                    for group, records in state.mcast_groups.items()
                    if ids & set(records)}
        if table == 'uplink':
            return self.keys(state)
        return set()

    # --- snooping --------------------------------------------------------
    def membership_message(self, state, msg, send_packet):
        if not self.bucket.take():
            self.suppressed += 1
            metrics.PACKET_INS_DROPPED.labels(self.name, 'rate').inc()
            return
        port = state.port_from_packet_in(msg)
        network = state.network(port.network_id) if port else None
        if not snooping(network):
            return
        now = self.clock()
        self.topics[network.id] = network.topic
        for event in igmp.events(msg.data):
            key = (network.id, event.group)
            if event.kind == igmp.JOIN:
                self.members.join(key, port.id,
                                  now + group_membership_interval(network))
            elif event.kind == igmp.FAST_LEAVE:
                self.members.remove(key, port.id)
            else:
                wait = network.multicast_robustness * \
                    network.multicast_last_member_interval
                self.members.shorten(key, port.id, now + wait)
                self._send_query(state, network, port, send_packet,
                                 group=event.group)
                self._wake_after(wait)
        self._flush_soon()

    def tick(self, state, send_packet):
        now = self.clock()
        self._adopt(state, now)
        local = state.local_port_ids()

        def keep(key, port_id):
            return port_id in local and snooping(state.network(key[0]))
        self.members.expire(now, keep)
        for port_id in list(self.next_query):
            if port_id not in local:
                del self.next_query[port_id]
        snooped = set()
        for net_id in state.local_networks():
            network = state.network(net_id)
            if not snooping(network):
                continue
            snooped.add(net_id)
            self.topics[net_id] = network.topic
            # Snooping just switched on: ask every port now.
            again = net_id not in self.snooped
            for port in state.local_ports(net_id):
                if again or self.next_query.get(port.id, 0) <= now:
                    self.next_query[port.id] = \
                        now + network.multicast_query_interval
                    self._send_query(state, network, port, send_packet)
        self.snooped = snooped
        self._flush_soon()

    def _adopt(self, state, now):
        """Records this chassis wrote before a restart (or that the
        writer does not know yet): their members stay until they report
        again or age out."""
        own = state.mcast_own
        self.deleted.intersection_update(own)
        for group, mine in own.items():
            if group in self.written or group in self.deleted:
                continue
            network = state.network(group[0])
            self.written[group] = list(mine.ports)
            if snooping(network):
                self.members.adopt(group, mine.ports,
                                   now + group_membership_interval(network))
            self.members.mark([group])

    def _send_query(self, state, network, port, send_packet, group=None):
        """A general query (IGMPv3 and MLDv2; group None) or a group's
        (after a leave: answer within the last member interval)."""
        args = (network.multicast_robustness,
                network.multicast_query_interval,
                network.multicast_last_member_interval if group else
                network.multicast_query_response, group)
        frames = []
        if group is None or ':' not in group:
            frames.append(igmp.igmp_query(QUERIER_MAC, mcm.querier_address(
                network, state.subnets(network.id)), *args))
        if group is None or ':' in group:
            frames.append(igmp.mld_query(QUERIER_MAC, *args))
        for frame in frames:
            state.send_to(port, frame, send_packet)

    def _wake_after(self, seconds):
        """A tick when a leave's wait is over (the regular tick is every
        2 s): the port goes as soon as it is due."""
        if self.controller is not None:
            timer = threading.Timer(seconds + 0.05, self.controller.post,
                                    ('tick', None))
            timer.daemon = True
            timer.start()

    # --- NB writes -------------------------------------------------------
    def _flush_soon(self):
        if self.controller is None or self.flush_pending:
            return
        if not self.members.dirty:
            return
        if self.writer is None:
            self.writer = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix='df-multicast')
        self.flush_pending = True
        self.writer.submit(self._flush)

    def _flush(self):
        time.sleep(FLUSH_DELAY)
        self.flush_pending = False
        changed = self.members.take()
        try:
            self.write(self.controller.nb, self.controller.state.chassis_id,
                       changed)
        except Exception as e:
            LOG.warning('could not write multicast memberships (%s): '
                        'again at the next tick', e)
            self.members.mark(changed)

    def write(self, nb, chassis_id, changed):
        """Write the changed groups' records: new and changed ones in one
        transaction (NbApi.write_many; one at a time if it loses a race),
        emptied ones deleted."""
        records, deletes = [], []
        for key, ports in sorted(changed.items()):
            if ports == self.written.get(key, []):
                continue            # what NB has (or no record, none wanted)
            net_id, group = key
            if net_id not in self.topics and ports:
                self.topics[net_id] = nb.get('logical_switch', net_id).topic
            record = dict(id=mcm.record_id(chassis_id, net_id, group),
                          network_id=net_id, chassis=chassis_id,
                          address=group, ports=ports,
                          topic=self.topics.get(net_id, ''))
            (records if ports else deletes).append((key, record))
        if records:
            try:
                nb.write_many(
                    [('patch', mcm.TABLE, r['id'], {'ports': r['ports']})
                     if key in self.written else ('create', mcm.TABLE, r)
                     for key, r in records])
            except (errors.NotFound, errors.AlreadyExists):
                for _, record in records:
                    _upsert(nb, record)
            for key, record in records:
                self.written[key] = record['ports']
        for key, record in deletes:
            try:
                nb.delete(mcm.TABLE, record['id'])
            except errors.NotFound:
                pass
            self.written.pop(key, None)
            self.deleted.add(key)


def _upsert(nb, record):
    try:
        nb.patch(mcm.TABLE, record['id'], {'ports': record['ports']})
    except errors.NotFound:
        nb.create(mcm.TABLE, record)


APP = MulticastApp
