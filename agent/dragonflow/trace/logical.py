"""The logical trace: one packet walked through the NB model the way the
pipeline will treat it, stage by stage, each step naming the NB object
that decides (``ovn-trace`` for Dragonflow).

:func:`trace` is a pure function of a view of the NB objects (a
:class:`~dragonflow.controller.state.LocalState` holding all of them,
built by :func:`load`) and a :class:`Packet`. It returns a
:class:`Trace`: the steps, the verdict (``delivered`` to a port, ``out``
to an external network, or ``dropped``) and, for the physical trace, the
headers of the packet as the source port sends it and the chassis it is
expected to cross with the conntrack passes on each.

What it models: port security (MACs, IPs, allowed address pairs), trunk
subports, firewall groups on VM ports and router interfaces (first
matching rule of the policy, implicit deny), egress and ingress security
groups (first allowing rule, remote prefixes and remote groups), service
function chains (the classifier that steers), ARP/ND answers and L2 lookup, distributed routing (router
interfaces, host routes to port addresses, extra routes, TTL), SNAT to a
floating IP or the chassis' external address, floating IPs reached from
inside, the destination chassis and the tunnel or provider network to it.
Ports' and routers' administrative state is reported where the pipeline
honours it (routers); ICMP errors the routers send back are named, not
traced.
"""
import collections
import ipaddress

from dragonflow import errors
from dragonflow.controller import pipeline as pl
from dragonflow.controller.state import LocalState
from dragonflow.model.logical_port import link_local
from dragonflow.trace import firewall as fwt

PROTOCOLS = ('icmp', 'tcp', 'udp')
TTL = 64
ECHO_REQUEST = {4: 8, 6: 128}
# Tables whose objects a trace reads.
TABLES = ('chassis', 'logical_switch', 'subnet', 'logical_port',
          'logical_router', 'logical_router_port', 'floating_ip',
          'security_group', 'security_group_rule', 'trunk',
          'child_port_segmentation', 'port_pair', 'port_pair_group',
          'flow_classifier', 'port_chain') + fwt.TABLES


class Packet(collections.namedtuple(
        'Packet', 'src_port to_port to_ip protocol sport dport src_ip '
                  'src_mac vlan ipv6')):
    """What to trace: from a port (id) to a port (id) or an address."""

    __slots__ = ()

    def __new__(cls, src_port, to_port=None, to_ip=None, protocol='icmp',
                sport=None, dport=None, src_ip=None, src_mac=None, vlan=None,
                ipv6=False):
        return super().__new__(cls, src_port, to_port, to_ip, protocol,
                               sport, dport, src_ip, src_mac, vlan, ipv6)


class Step(collections.namedtuple('Step', 'table verdict text objects '
                                          'chassis')):
    """One stage's decision. ``objects``: (table, id, name) of the NB
    objects that decide; ``chassis``: where it happens (None: unbound)."""

    __slots__ = ()

    @property
    def stage(self):
        stage = pl.BY_ID.get(self.table)
        return stage.name if stage else str(self.table)

    def to_dict(self):
        return {'table': self.table, 'stage': self.stage,
                'verdict': self.verdict, 'text': self.text,
                'chassis': self.chassis,
                'objects': [{'table': t, 'id': i, 'name': n}
                            for t, i, n in self.objects]}


class Trace:
    """The steps of one trace and what came of it."""

    def __init__(self, packet):
        self.packet = packet
        self.steps = []
        self.verdict = None        # delivered | out | dropped
        self.headers = {}          # the packet as the source port sends it
        self.hops = []             # [{'chassis', 'ct'}] in path order
        self.summary = ''

    @property
    def last(self):
        return self.steps[-1] if self.steps else None

    @property
    def delivered(self):
        return self.verdict in ('delivered', 'out')

    def to_dict(self):
        return {'verdict': self.verdict, 'summary': self.summary,
                'headers': self.headers, 'hops': self.hops,
                'steps': [s.to_dict() for s in self.steps]}

    def text(self):
        lines = [self.summary, '']
        for i, step in enumerate(self.steps, 1):
            where = f' [{step.chassis}]' if step.chassis else ''
            lines.append(f'{i:2d}. {step.table:3d} {step.stage:<17} '
                         f'{step.verdict:<9} {step.text}{where}')
        return '\n'.join(lines)


class Dropped(Exception):
    """The walk stops: the last step dropped the packet."""


def load(nb):
    """A view of every NB object a trace reads (skipping invalid ones)."""
    view = LocalState(None)
    for table in TABLES:
        for obj in nb.list(table, skipped=[]):
            view.put(obj)
    return view


def label(obj):
    """``name (id)`` or ``id``: how steps name an object."""
    name = getattr(obj, 'name', None)
    return f'{name} ({obj.id})' if name and name != obj.id else obj.id


def _ref(obj):
    return obj.table, obj.id, getattr(obj, 'name', None) or None


def _in(address, prefix):
    return ipaddress.ip_address(address) in ipaddress.ip_network(
        prefix, strict=False)


def _version(address):
    return ipaddress.ip_address(address).version


class Walk:
    """One trace in progress over a view."""

    def __init__(self, view, packet):
        self.view = view
        self.p = packet
        self.t = Trace(packet)
        self.chassis = None       # where the packet is now
        self.ttl = TTL
        self.routed_into = None   # the router interface it left through

    # --- steps -----------------------------------------------------------
    def step(self, table, text, *objects, verdict='pass'):
        self.t.steps.append(Step(table, verdict, text,
                                 [_ref(o) for o in objects if o is not None],
                                 self.chassis))

    def drop(self, table, text, *objects):
        self.step(table, text, *objects, verdict='dropped')
        raise Dropped()

    def ct(self):
        """One conntrack pass on the current chassis (a new connection)."""
        if self.t.hops:
            self.t.hops[-1]['ct'].append('trk,new')

    def arrive(self, chassis):
        self.chassis = chassis
        self.t.hops.append({'chassis': chassis, 'ct': []})

    # --- the walk --------------------------------------------------------
    def run(self):
        t = self.t
        try:
            sender = self.source()
            dst_ip = self.destination_ip(sender)
            self.port_security(sender, dst_ip)
            self.firewalls_out(sender)
            self.security_groups(sender, 'egress', dst_ip,
                                 pl.EGRESS_SG)
            self.chains(sender, dst_ip)
            target = self.forward(sender, dst_ip)
            if target is None:
                t.verdict = 'out'
            else:
                self.deliver(sender, target, dst_ip)
                t.verdict = 'delivered'
        except Dropped:
            t.verdict = 'dropped'
        last = t.last
        h = t.headers
        what = _what(h) if 'proto' in h else self.p.protocol
        head = f'{what} {h.get("nw_src", "?")} -> ' \
            f'{h.get("nw_dst", self.p.to_ip or "?")}: {t.verdict}'
        if last is not None and t.verdict == 'dropped':
            head += f' at {last.table} ({last.stage}): {last.text}'
        t.summary = head
        return t

    def source(self):
        view, p = self.view, self.p
        port = view.get('logical_port', p.src_port)
        if port is None:
            raise errors.NotFound('logical_port', p.src_port)
        self.arrive(self.bound(port))
        sender = port
        if p.vlan is not None:
            segment = next((s for s in view.segments.values()
                            if s.parent_id == port.id and
                            s.segmentation_id == p.vlan), None)
            if segment is None:
                self.drop(pl.CLASSIFIER, f'port {label(port)} has no trunk '
                          f'subport on VLAN {p.vlan}', port)
            sender = view.get('logical_port', segment.port_id)
            if sender is None:
                self.drop(pl.CLASSIFIER, f'subport {segment.port_id} of VLAN '
                          f'{p.vlan} does not exist', segment)
        network = view.network(sender.network_id)
        where = f'bound to chassis {port.binding_chassis}' \
            if port.binding_chassis else 'bound to no chassis (the trace ' \
            'goes on in the model; the physical trace cannot start)'
        trunk = f'VLAN {p.vlan} on trunk parent {label(port)} -> subport ' \
            f'{label(sender)}, ' if sender is not port else ''
        self.step(pl.CLASSIFIER, f'{trunk}port {label(sender)} on network '
                  f'{label(network)} (key {network.unique_key}), {where}',
                  sender, network)
        return sender

    def destination_ip(self, sender):
        view, p = self.view, self.p
        version = 6 if p.ipv6 else 4
        if p.to_ip:
            version = _version(p.to_ip)
        if p.src_ip and _version(p.src_ip) != version:
            raise errors.ValidationError(
                f'--src-ip {p.src_ip} is IPv{_version(p.src_ip)}, the '
                f'destination IPv{version}')
        src_ip = p.src_ip or next((ip for ip in sender.ips
                                   if _version(ip) == version), None)
        if src_ip is None:
            raise errors.ValidationError(
                f'port {label(sender)} has no IPv{version} address; give '
                '--src-ip')
        dst_ip = p.to_ip
        if p.to_port:
            target = view.get('logical_port', p.to_port)
            if target is None:
                raise errors.NotFound('logical_port', p.to_port)
            dst_ip = next((ip for ip in target.ips
                           if _version(ip) == version), None)
            if dst_ip is None:
                raise errors.ValidationError(
                    f'port {label(target)} has no IPv{version} address')
        elif not self._known(dst_ip, sender):
            raise errors.ValidationError(
                f'{dst_ip} is on no subnet, is no floating IP, and no '
                f'router of network {sender.network_id} routes it (no extra '
                'route, no external gateway)')
        proto = p.protocol
        h = self.t.headers
        h.update(port=p.src_port, vlan=p.vlan,
                 dl_src=p.src_mac or sender.macs[0], nw_src=src_ip,
                 nw_dst=dst_ip, nw_ttl=TTL, version=version,
                 proto='icmp6' if proto == 'icmp' and version == 6 else proto)
        mac = self._next_hop_mac(sender, dst_ip)
        if mac:
            h['dl_dst'] = mac
        if proto == 'icmp':
            h.update(icmp_type=ECHO_REQUEST[version], icmp_code=0)
        else:
            h.update(tp_src=p.sport or 40000, tp_dst=p.dport or
                     (22 if proto == 'tcp' else 53))
        return dst_ip

    def _next_hop_mac(self, sender, dst_ip):
        """The MAC the VM sends to (the destination's on its network,
        else its subnet's router interface's), as far as the model has
        one: packets dropped before L2 are traced on the switch with it."""
        view = self.view
        net_id = sender.network_id
        if any(s.contains(dst_ip) for s in view.subnets(net_id)):
            holder = self._holder(net_id, dst_ip)
            return holder.macs[0] if holder else None
        src = self.t.headers['nw_src']
        for rport in view.router_ports(net_id):
            subnet = view.get('subnet', rport.subnet_id)
            if subnet is not None and subnet.contains(src):
                return rport.mac
        return None

    def _known(self, address, sender):
        view = self.view
        if any(s.contains(address) for s in view.objects['subnet'].values()
               if s.network.version == _version(address)):
            return True
        for router in self._routers(sender.network_id):
            if router.external_gateway or any(
                    _in(address, r['destination']) for r in router.routes
                    if _version(r['destination'].split('/')[0]) ==
                    _version(address)):
                return True
        return False

    def _routers(self, net_id):
        return [r for _, r in self.view.enabled_interfaces(net_id)]

    def port_security(self, sender, dst_ip):
        h = self.t.headers
        mac, ip = h['dl_src'], h['nw_src']
        if not sender.port_security_enabled:
            self.step(pl.PORT_SECURITY, f'port security of {label(sender)} '
                      'is off: any source passes', sender)
            return
        pairs = [(p['ip_address'], p.get('mac_address') or sender.macs[0])
                 for p in sender.allowed_address_pairs]
        owned = [(a, m) for m in sender.macs for a in sender.ips]
        owned += [(link_local(m), m) for m in sender.macs]
        if mac not in sender.macs and mac not in {m for _, m in pairs}:
            self.drop(pl.PORT_SECURITY, f'port_security of {label(sender)}: '
                      f'{mac} is not one of its MACs '
                      f'({", ".join(sender.macs)})', sender)
        if not any(m == mac and _in(ip, a) for a, m in owned + pairs):
            have = ', '.join(sender.ips) or 'none'
            extra = ', '.join(a for a, _ in pairs) or 'none'
            self.drop(pl.PORT_SECURITY, f'port_security of {label(sender)}: '
                      f'{ip} is not one of its addresses ({have}; allowed '
                      f'pairs: {extra}) with MAC {mac}', sender)
        self.step(pl.PORT_SECURITY, f'{ip} / {mac} belongs to '
                  f'{label(sender)}', sender)

    # --- firewall groups -------------------------------------------------
    def firewalls_out(self, sender):
        """The sender's egress policy, then, for a packet to a router
        interface's MAC, that interface's egress policy."""
        self._fw_conntrack(sender)
        self.firewall(sender, 'egress', pl.FW_EGRESS_RULES, 'port')
        mac = self.t.headers.get('dl_dst')
        rport = next((r for r in self.view.router_ports(sender.network_id)
                      if r.mac == mac), None)
        if rport is not None:
            self.firewall(rport, 'egress', pl.FW_EGRESS_ROUTER_RULES,
                          'router interface')

    def firewalls_in(self, target):
        """For a packet routed into the target's network, that router
        interface's ingress policy; then the target's."""
        self._fw_conntrack(target)
        rport = self.routed_into
        if rport is not None and rport.network_id == target.network_id:
            self.firewall(rport, 'ingress', pl.FW_INGRESS_ROUTER_RULES,
                          'router interface')
        self.firewall(target, 'ingress', pl.FW_INGRESS_RULES, 'port')

    def _fw_conntrack(self, port):
        if not port.is_protected() and fwt.conntracked(self.view, port):
            self.ct()

    def firewall(self, port, direction, table, kind):
        found = fwt.filters(self.view, port.id, direction)
        if found is None:
            return
        group, policy_id = found
        policy = self.view.get('firewall_policy', policy_id)
        where = f'firewall group {label(group)} on {kind} {label(port)}'
        rule = fwt.decide(self.view, policy_id, self.t.headers)
        h = self.t.headers
        what = f'{_what(h)} {h["nw_src"]} -> {h["nw_dst"]}'
        if rule == fwt.IMPLICIT:
            self.drop(table, f'{direction}: no rule of firewall policy '
                      f'{label(policy) if policy else policy_id} matches '
                      f'{what} ({where}): implicit deny', group, policy,
                      port)
        text = f'{direction}: rule {label(rule)} of firewall policy ' \
            f'{label(policy)} ({fwt.rule_text(rule)}) {{}} {what} ({where})'
        if rule.action == 'allow':
            self.step(table, text.format('allows'), rule, group, port)
            return
        answer = '; the agent answers with a TCP RST' if h['proto'] == \
            'tcp' else '; the agent answers with ICMP unreachable'
        self.drop(table, text.format('rejects' if rule.action == 'reject'
                                     else 'denies') +
                  (answer if rule.action == 'reject' else ''), rule, group,
                  port)

    # --- security groups -------------------------------------------------
    def security_groups(self, port, direction, peer_ip, table):
        view, h = self.view, self.t.headers
        if not port.is_protected():
            self.step(table, f'{direction}: port {label(port)} has no '
                      'security groups (or port security off): not '
                      'filtered', port)
            return
        self.ct()
        groups = [view.get('security_group', g) or g
                  for g in port.security_groups]
        for group_id in port.security_groups:
            for rule in view.group_rules(group_id):
                if rule.direction == direction and self._rule_allows(
                        rule, peer_ip):
                    group = view.get('security_group', group_id)
                    self.step(table, f'{direction} allowed by rule '
                              f'{rule.id} of group '
                              f'{label(group) if group else group_id}: '
                              f'{_rule_text(rule)}; connection committed',
                              rule, group)
                    return
        names = ', '.join(label(g) if not isinstance(g, str) else g
                          for g in groups)
        peer = 'to' if direction == 'egress' else 'from'
        self.drop(table, f'no {direction} rule of groups {names} matches '
                  f'{_what(h)} {peer} {peer_ip} (port {label(port)})',
                  port, *[g for g in groups if not isinstance(g, str)])

    def _rule_allows(self, rule, peer_ip):
        h = self.t.headers
        if rule.ethertype != f'IPv{h["version"]}':
            return False
        proto = h['proto']
        if rule.protocol is not None:
            wanted = {'icmp6': 'icmpv6'}.get(proto, proto)
            if rule.protocol != wanted:
                return False
            low, high = rule.port_range_min, rule.port_range_max
            if proto in ('tcp', 'udp'):
                if low is not None and not low <= h['tp_dst'] <= high:
                    return False
            elif low is not None and (
                    h['icmp_type'] != low or
                    (high is not None and h['icmp_code'] != high)):
                return False
        if rule.remote_ip_prefix and not _in(peer_ip, rule.remote_ip_prefix):
            return False
        if rule.remote_group_id:
            members = set()
            for member in self.view.group_ports(rule.remote_group_id):
                members |= LocalState.addresses_of(member)
            if not any(_in(peer_ip, a) for a in members):
                return False
        return True

    # --- service function chains ----------------------------------------
    def chains(self, sender, dst_ip):
        view = self.view
        for chain in sorted(view.objects['port_chain'].values(),
                            key=lambda c: c.id):
            for cid in chain.flow_classifiers:
                fc = view.get('flow_classifier', cid)
                if fc is not None and fc.logical_source_port == sender.id \
                        and self._classifies(fc, dst_ip):
                    groups = [view.get('port_pair_group', g)
                              for g in chain.port_pair_groups]
                    names = ' -> '.join(label(g) if g else '?'
                                        for g in groups)
                    self.step(pl.SFC, f'classified by {label(fc)}: steered '
                              f'by port chain {label(chain)} through port '
                              f'pair groups {names}, then on to {dst_ip}',
                              fc, chain)
                    return

    def _classifies(self, fc, dst_ip):
        h = self.t.headers
        if fc.ethertype != f'IPv{h["version"]}':
            return False
        if fc.protocol is not None and fc.protocol != \
                {'icmp6': 'icmpv6'}.get(h['proto'], h['proto']):
            return False
        for end, port in (('source', h.get('tp_src')),
                          ('destination', h.get('tp_dst'))):
            low = getattr(fc, f'{end}_port_range_min')
            if low is not None and not (
                    port is not None and
                    low <= port <= getattr(fc, f'{end}_port_range_max')):
                return False
        for prefix, ip in ((fc.source_ip_prefix, h['nw_src']),
                           (fc.destination_ip_prefix, dst_ip)):
            if prefix and not _in(ip, prefix):
                return False
        if fc.logical_destination_port:
            port = self.view.get('logical_port', fc.logical_destination_port)
            if port is None or dst_ip not in port.ips:
                return False
        return True

    # --- forwarding ------------------------------------------------------
    def _holder(self, net_id, address):
        """The port of a network with this address (or allowed pair)."""
        for port in self.view.ports(net_id):
            if address in port.ips:
                return port
        for port in self.view.paired_ports(net_id):
            if any(_in(address, p['ip_address'])
                   for p in port.allowed_address_pairs):
                return port
        return None

    def forward(self, sender, dst_ip):
        """L2 or routed: the port the packet is for, or None when it
        leaves to an external network."""
        view, h = self.view, self.t.headers
        network = view.network(sender.network_id)
        resolver = pl.ARP_RESPONDER if h['version'] == 4 else \
            pl.ND_RESPONDER
        if any(s.contains(dst_ip) for s in view.subnets(network.id)):
            target = self._holder(network.id, dst_ip)
            rport = next((r for r in view.router_ports(network.id)
                          if r.ip == dst_ip), None)
            if target is None and rport is not None:
                h['dl_dst'] = rport.mac
                self.step(resolver, f'{dst_ip} is router interface '
                          f'{label(rport)}: {rport.mac}', rport)
                self.drop(pl.L3_LOOKUP, f'{dst_ip} is router '
                          f'{rport.router_id}\'s own address: the '
                          'distributed router answers ARP/ND for it, '
                          'nothing answers what is sent to it', rport)
            if target is None:
                self.drop(resolver, f'no port of network {label(network)} '
                          f'has {dst_ip}: its address resolution is not '
                          'answered', network)
            h['dl_dst'] = target.macs[0]
            self.step(resolver, f'{dst_ip} is at {target.macs[0]} (port '
                      f'{label(target)}), answered on the chassis', target)
            self.step(pl.L2_LOOKUP, f'destination MAC {target.macs[0]} -> '
                      f'port {label(target)} (key {target.unique_key})',
                      target)
            return target
        return self.route(sender, network, dst_ip, resolver)

    def route(self, sender, network, dst_ip, resolver):
        view, h = self.view, self.t.headers
        src_subnets = [s for s in view.subnets(network.id)
                       if s.contains(h['nw_src'])] or [
            s for s in view.subnets(network.id)
            if s.network.version == h['version']]
        rports = [r for r in view.router_ports(network.id)
                  if any(r.subnet_id == s.id for s in src_subnets)]
        if not rports:
            names = ', '.join(f'{label(s)} {s.cidr}' for s in src_subnets)
            self.drop(pl.L2_LOOKUP, f'{dst_ip} is off-link and subnet '
                      f'{names or "(none)"} has no router interface: '
                      'nothing routes it', *src_subnets)
        rport = rports[0]
        router = view.get('logical_router', rport.router_id)
        if router is None or not router.enabled:
            self.drop(pl.L2_LOOKUP, f'router {rport.router_id} of interface '
                      f'{label(rport)} is missing or disabled', rport,
                      router)
        h['dl_dst'] = rport.mac
        self.step(resolver, f'gateway {rport.ip} is router interface '
                  f'{label(rport)}: {rport.mac}', rport)
        self.step(pl.L2_LOOKUP, f'destination MAC {rport.mac} -> router '
                  f'{label(router)} (key {router.unique_key})', router)
        self.ttl -= 1
        for other in view.router_interfaces(router.id):
            subnet = view.get('subnet', other.subnet_id)
            if subnet is None or not subnet.contains(dst_ip):
                continue
            target = self._holder(other.network_id, dst_ip)
            if target is None:
                self.drop(pl.L3_LOOKUP, f'router {label(router)}: no port '
                          f'of subnet {label(subnet)} ({subnet.cidr}) has '
                          f'{dst_ip} (router_icmp answers host unreachable)',
                          router, subnet)
            self.step(pl.L3_LOOKUP, f'router {label(router)}: {dst_ip} on '
                      f'interface {label(other)} ({subnet.cidr}) -> port '
                      f'{label(target)}; source MAC {other.mac}, TTL '
                      f'{TTL} -> {self.ttl}', router, other, target)
            self.routed_into = other
            return target
        routes = sorted((r for r in router.routes
                         if _version(r['nexthop']) == h['version'] and
                         _in(dst_ip, r['destination'])),
                        key=lambda r: -ipaddress.ip_network(
                            r['destination']).prefixlen)
        for route in routes:
            nexthop = route['nexthop']
            for other in view.router_interfaces(router.id):
                target = self._holder(other.network_id, nexthop)
                if target is not None:
                    self.step(pl.L3_LOOKUP, f'router {label(router)}: extra '
                              f'route {route["destination"]} via {nexthop} '
                              f'-> port {label(target)}; TTL {TTL} -> '
                              f'{self.ttl}', router, target)
                    return target
        if router.external_gateway and h['version'] == 4:
            return self.external(sender, router, dst_ip)
        why = ' (IPv6 is not NATed to the external gateway)' \
            if router.external_gateway else ''
        self.drop(pl.L3_LOOKUP, f'router {label(router)} has no interface, '
                  f'extra route or external gateway for {dst_ip}{why} '
                  '(router_icmp answers network unreachable)', router)

    def external(self, sender, router, dst_ip):
        view = self.view
        gw = router.external_gateway
        public = view.network(gw['network_id'])
        self.step(pl.L3_LOOKUP, f'router {label(router)}: {dst_ip} -> '
                  f'external gateway on network {label(public)}', router,
                  public)
        fip = view.floating_ip_of(sender.id)
        if fip is not None:
            snat, owner = fip.floating_ip_address, fip
            how = f'floating IP {label(fip)}'
        else:
            chassis = view.chassis(self.chassis) if self.chassis else None
            if chassis is None or not chassis.external_host_ip:
                self.drop(pl.EGRESS_NAT, f'no floating IP on {label(sender)} '
                          f'and chassis {self.chassis or "(none: unbound)"} '
                          'has no external_host_ip: no SNAT address',
                          sender, chassis)
            snat, owner = chassis.external_host_ip, chassis
            how = f'chassis {chassis.id} external address'
        self.ct()
        self.step(pl.EGRESS_NAT_OUT, f'SNAT {self.t.headers["nw_src"]} -> '
                  f'{snat} ({how}), committed in the NAT zone', owner)
        physnet = public.physical_network
        tag = f' VLAN {public.segmentation_id}' \
            if public.network_type == 'vlan' else ''
        target = next((f for f in view.objects['floating_ip'].values()
                       if f.floating_ip_address == dst_ip and
                       f.floating_network_id == public.id), None)
        self.step(pl.EGRESS_PROVIDER, f'out to {dst_ip} through provider '
                  f'network {physnet}{tag} of {label(public)} (next hop: its '
                  'gateway)', public, verdict='out' if target is None else
                  'pass')
        if target is None:
            return None
        port = view.get('logical_port', target.port_id) \
            if target.port_id else None
        if port is None:
            self.drop(pl.INGRESS_NAT, f'{dst_ip} is floating IP '
                      f'{label(target)}, associated with no port', target)
        if not port.binding_chassis:
            self.drop(pl.INGRESS_NAT, f'{dst_ip} is floating IP '
                      f'{label(target)} of port {label(port)}, which is '
                      'bound to no chassis: no chassis answers ARP for it',
                      target, port)
        self.arrive(port.binding_chassis)
        self.t.headers.setdefault('fip', dst_ip)
        self.ct()
        self.step(pl.INGRESS_NAT_ROUTE, f'floating IP {label(target)}: DNAT '
                  f'{dst_ip} -> {target.fixed_ip_address} (port '
                  f'{label(port)}) on chassis {port.binding_chassis}',
                  target, port)
        self.deliver_local(port, snat)
        return port

    # --- delivery --------------------------------------------------------
    def bound(self, port):
        """The chassis a port is on (a subport: its trunk parent's)."""
        segment = self.view.segments.get(port.id)
        parent = self.view.get('logical_port', segment.parent_id) \
            if segment else None
        return port.binding_chassis or (parent.binding_chassis
                                        if parent else None)

    def deliver(self, sender, target, dst_ip):
        view = self.view
        bound = self.bound(target)
        if not bound:
            self.drop(pl.EGRESS, f'port {label(target)} is bound to no '
                      'chassis', target)
        where = view.chassis(bound)
        if where is None:
            self.drop(pl.EGRESS, f'port {label(target)} is bound to chassis '
                      f'{bound}, which is not registered', target)
        network = view.network(target.network_id)
        if self.chassis == bound:
            self.step(pl.EGRESS, f'port {label(target)} is local on '
                      f'{where.id}', target)
        elif network.network_type in ('vlan', 'flat'):
            tag = f' VLAN {network.segmentation_id}' \
                if network.network_type == 'vlan' else ''
            self.step(pl.EGRESS_PROVIDER, f'to chassis {where.id} through '
                      f'provider network {network.physical_network}{tag}',
                      where, network)
            self.arrive(where.id)
        else:
            kind = network.network_type
            if kind not in where.tunnel_types:
                self.drop(pl.EGRESS, f'chassis {where.id} terminates '
                          f'{", ".join(where.tunnel_types)}, not {kind} '
                          f'(network {label(network)})', where, network)
            self.step(pl.EGRESS, f'{kind} tunnel, VNI '
                      f'{network.segmentation_id}, to chassis {where.id} '
                      f'({where.ip}) for port {label(target)}', where,
                      network, target)
            self.arrive(where.id)
            self.step(pl.INGRESS_TUNNEL, f'from the tunnel: port '
                      f'{label(target)} (key {target.unique_key})', target)
        self.deliver_local(target, self.t.headers['nw_src'])

    def deliver_local(self, target, src_ip):
        self.firewalls_in(target)
        self.security_groups(target, 'ingress', src_ip, pl.INGRESS_SG)
        segment = self.view.segments.get(target.id)
        how = f' (VLAN {segment.segmentation_id} pushed, through trunk ' \
            f'parent {segment.parent_id})' if segment else ''
        self.step(pl.INGRESS_DISPATCH, f'delivered to port {label(target)} '
                  f'on chassis {self.chassis}{how}', target,
                  verdict='delivered')


def _what(headers):
    proto = headers['proto']
    if proto in ('tcp', 'udp'):
        return f'{proto}/{headers["tp_dst"]}'
    return f'{proto} type {headers["icmp_type"]}'


def _rule_text(rule):
    parts = [rule.direction, rule.ethertype, rule.protocol or 'any']
    if rule.port_range_min is not None:
        parts.append(f'{rule.port_range_min}-{rule.port_range_max}')
    if rule.remote_ip_prefix:
        parts.append(f'remote {rule.remote_ip_prefix}')
    if rule.remote_group_id:
        parts.append(f'remote group {rule.remote_group_id}')
    return ' '.join(parts)


def trace(view, packet):
    """Walk packet through the model: a :class:`Trace`. Raises NbError
    subclasses for what cannot be traced at all (unknown port, an
    address nothing knows)."""
    if packet.protocol not in PROTOCOLS:
        raise errors.ValidationError(
            f'--protocol {packet.protocol}: use one of {", ".join(PROTOCOLS)}')
    if (packet.to_port is None) == (packet.to_ip is None):
        raise errors.ValidationError('give --to a port or an IP address')
    return Walk(view, packet).run()
