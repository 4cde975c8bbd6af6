"""The OpenFlow pipeline, declared once as data, and its contract check.

Registers: ``reg6`` source port key, ``reg7`` destination port key,
``reg5`` router key, ``metadata`` network key (Dragonflow's conventions);
``reg4`` marks the copies of a flooded packet; ``reg2`` a load balancer
listener's key, ``reg3`` its hash slot and ``reg1`` a persistent client's
member; ``reg8`` a firewall group's key and ``reg9`` the rule and verdict
of a packet the firewall sends to the controller.
Conntrack zone = network key (16 bits).

Every stage (OpenFlow table) is a :class:`Stage` in :data:`STAGES`: its
number and name, the apps that own it (install its table-miss flow; at
most one of them is enabled), the apps that may write flows in it, the
stages its flows may continue to (``goto``, ``resubmit`` or a conntrack
recirculation), and its purpose. :func:`check` holds a flow against that
declaration; the controller's flow table calls it for every new flow, so
a flow into an undeclared table, by an app that is not a writer of the
stage, or going on to an undeclared stage is refused with a message that
names the app and the stage (FAUCET's table verification, as data).
``python3 -m dragonflow.controller.pipeline`` prints the table the README
shows (a unit test keeps the two equal).
"""
import collections

CLASSIFIER = 0          # ingress from local ports and tunnels
PORT_SECURITY = 5       # egress anti-spoofing
TAP_OUT_PRE = 6         # tap: copies of what a port sends (before SGs)
EGRESS_CT = 10          # egress: send IP of protected ports to conntrack
FW_EGRESS = 11          # firewall groups: a VM port's egress policy?
FW_EGRESS_RULES = 12    # ... its rules, in policy order
FW_EGRESS_ROUTER = 13   # ... a router interface's egress policy?
FW_EGRESS_ROUTER_RULES = 14
TAP_OUT = 16            # tap: copies of what a port sends (after SGs)
EGRESS_SG = 15          # egress security group rules
SFC = 20                # service function chains: steer to the next hop
ARP_RESPONDER = 25
DHCP = 30
LB_VIP = 40             # load balancer: new connections to a VIP:port
LB_SELECT = 41          # ... pick a member (multipath), MACs after DNAT
LB_MEMBER = 42          # ... DNAT to the member of the slot picked
LB_AFFINITY = 43        # ... learned: a client's member (persistence)
ND_RESPONDER = 45       # IPv6 neighbour solicitations, router solicitations
INGRESS_NAT = 50        # from a provider bridge: ARP for our external
                        # addresses, conntrack NAT lookup
INGRESS_NAT_ROUTE = 51  # un-NATed/DNATed packets routed to their port
L2_LOOKUP = 55
MCAST_LOOKUP = 56       # IP multicast of a snooping network: to members
MCAST_RELAY = 57        # ... and to members on the router's other subnets
L3_LOOKUP = 60          # distributed routing
EGRESS_NAT = 70         # routed to the external network: NAT lookup
EGRESS_NAT_OUT = 71     # SNAT/FIP commit, then out to the external network
EGRESS = 75             # to the destination port: local or over a tunnel
EGRESS_PROVIDER = 80    # out to a provider network's bridge
INGRESS_TUNNEL = 100    # from a tunnel or provider bridge: destination lookup
MCAST_ARRIVAL = 101     # multicast arriving from a tunnel: local members
INGRESS_LB = 102        # replies of balanced connections un-DNATed
TAP_IN_PRE = 103        # tap: copies of what a port receives (before SGs)
INGRESS_CT = 105        # ingress: send IP to protected ports to conntrack
FW_INGRESS_ROUTER = 106  # firewall groups: a router interface's ingress
FW_INGRESS_ROUTER_RULES = 107   # ... policy, its rules
FW_INGRESS = 108        # ... a VM port's ingress policy?
FW_INGRESS_RULES = 109  # ... its rules
TAP_IN = 112            # tap: copies of what a port receives (after SGs)
INGRESS_SG = 110        # ingress security group rules
INGRESS_DISPATCH = 115  # output to the local port in reg7
TAP_DELIVER = 120       # tap: a copy to its tap service port

PASS_THROUGH_APP = 'pipeline'   # installs the optional stages' table-miss


class Stage(collections.namedtuple(
        'Stage', 'id name owners writers next pass_through purpose')):
    """One table of the pipeline. ``pass_through``: an optional stage's
    next stage; when no enabled app owns the stage, the controller's
    ``pipeline`` app installs a table-miss flow going there."""

    __slots__ = ()

    def may_write(self, app):
        return app in self.writers or (
            app == PASS_THROUGH_APP and self.pass_through is not None)


def _stage(table, name, owners, writers, nxt, purpose, pass_through=None):
    return Stage(table, name, tuple(owners), frozenset(writers),
                 frozenset(nxt), pass_through, purpose)


STAGES = (
    _stage(CLASSIFIER, 'classifier', ('classifier', 'l2_normal'),
           ('classifier', 'l2_normal', 'tunneling', 'provider', 'nat',
            'tap'),
           (PORT_SECURITY, INGRESS_NAT, L2_LOOKUP, INGRESS_TUNNEL,
            INGRESS_LB),
           'local port (or trunk subport: VLAN popped) → reg6 = port key, '
           'metadata = network key; tunnel + VNI (+ Geneve port key) or '
           'provider patch → network; L3 flavour: router MACs, else '
           'NORMAL; mirrored copies (reserved VNI) → their tap service '
           'port'),
    _stage(PORT_SECURITY, 'port_security', ('port_security',),
           ('port_security',), (TAP_OUT_PRE,),
           'source MAC/IP of the port or its allowed pairs (v4, v6, '
           'link-local, DAD); no DHCP server, RA or DHCPv6 server'),
    _stage(TAP_OUT_PRE, 'tap_out_pre', ('tap',), ('tap',),
           (EGRESS_CT, TAP_DELIVER),
           'what a tapped port sends, before its security groups → a copy '
           'to each tap service (resubmit to 120)',
           pass_through=EGRESS_CT),
    _stage(EGRESS_CT, 'egress_ct', ('security_groups',),
           ('security_groups', 'fwaas'), (FW_EGRESS, TAP_OUT),
           'IP of a port with security groups (or under a firewall group) '
           '→ conntrack (zone = network key); DHCP requests, ND and MLD '
           'pass', pass_through=TAP_OUT),
    _stage(FW_EGRESS, 'fw_egress', ('fwaas',), ('fwaas',),
           (FW_EGRESS_RULES, FW_EGRESS_ROUTER, EGRESS_SG),
           'established/related pass; a new connection of a port in a '
           'firewall group with an egress policy → reg8 = group key',
           pass_through=EGRESS_SG),
    _stage(FW_EGRESS_RULES, 'fw_egress_rules', ('fwaas',), ('fwaas',),
           (FW_EGRESS_ROUTER,),
           'the group\'s egress rules in policy order (allow, deny, '
           'reject → controller); no match: dropped'),
    _stage(FW_EGRESS_ROUTER, 'fw_egress_router', ('fwaas',), ('fwaas',),
           (FW_EGRESS_ROUTER_RULES, EGRESS_SG),
           'new connection to a router interface\'s MAC whose group has '
           'an egress policy → reg8 = group key'),
    _stage(FW_EGRESS_ROUTER_RULES, 'fw_egress_router_rules', ('fwaas',),
           ('fwaas',), (EGRESS_SG,),
           'that group\'s egress rules in policy order'),
    _stage(EGRESS_SG, 'egress_sg', ('security_groups',),
           ('security_groups', 'fwaas'), (TAP_OUT,),
           'established/related pass; new connections need an egress rule '
           'and are committed (a port without groups under a firewall: '
           'committed)'),
    _stage(TAP_OUT, 'tap_out', ('tap',), ('tap',), (SFC, TAP_DELIVER),
           'what a tapped port sends, after its security groups → a copy '
           'to each tap service', pass_through=SFC),
    _stage(SFC, 'sfc', ('sfc',), ('sfc',), (ARP_RESPONDER, L2_LOOKUP),
           'a chain\'s classified traffic → MAC of a function of the next '
           'port pair group', pass_through=ARP_RESPONDER),
    _stage(ARP_RESPONDER, 'arp_responder', ('arp_responder',),
           ('arp_responder',), (DHCP, INGRESS_DISPATCH),
           'ARP requests for addresses the network knows answered on the '
           'chassis'),
    _stage(DHCP, 'dhcp', ('dhcp',), ('dhcp', 'dhcpv6'), (LB_VIP,),
           'DHCP and DHCPv6 → controller (packet-in), answered from NB'),
    _stage(LB_VIP, 'lb_vip', ('lb',), ('lb',), (LB_SELECT, ND_RESPONDER),
           'IP to a VIP:port of a listener reachable from the network → '
           'reg2 = listener key, conntrack (LB zone, NAT restored)',
           pass_through=ND_RESPONDER),
    _stage(LB_SELECT, 'lb_select', ('lb',), ('lb',),
           (LB_SELECT, LB_MEMBER, LB_AFFINITY, L2_LOOKUP, EGRESS_NAT),
           'new: multipath hash into reg3 (slots by weight); DNATed: to '
           'the member\'s MAC, or the router\'s when routed; hairpin: '
           'SNAT to the VIP (hairpin zone), replies un-NATed'),
    _stage(LB_MEMBER, 'lb_member', ('lb',), ('lb',), (LB_SELECT,),
           'slot in reg3 (or, with session persistence, a client\'s '
           'learned member in reg1) → commit with DNAT to that member\'s '
           'address and port'),
    _stage(LB_AFFINITY, 'lb_affinity', ('lb',), ('lb',), (),
           'flows the switch learns (session persistence): listener + '
           'client address → its member in reg1, idle timeout = '
           'persistence timeout'),
    _stage(ND_RESPONDER, 'nd_responder', ('nd_responder',),
           ('nd_responder', 'router_advertisement'), (L2_LOOKUP,),
           'IPv6 NS for known addresses → controller → NA; router '
           'solicitations → RA', pass_through=L2_LOOKUP),
    _stage(INGRESS_NAT, 'ingress_nat', ('nat',), ('nat',),
           (INGRESS_NAT_ROUTE, INGRESS_TUNNEL),
           'from a provider patch: ARP for our external addresses and FIPs '
           'answered; IP to them → conntrack (NAT zone)',
           pass_through=INGRESS_TUNNEL),
    _stage(INGRESS_NAT_ROUTE, 'ingress_nat_route', ('nat',), ('nat',),
           (INGRESS_NAT_ROUTE, EGRESS, LB_VIP),
           'un-NATed replies and DNATed FIP connections → their port by '
           'ct_mark'),
    _stage(L2_LOOKUP, 'l2_lookup', ('l2',),
           ('l2', 'l3', 'provider', 'multicast'),
           (L3_LOOKUP, EGRESS, EGRESS_PROVIDER, INGRESS_LB, MCAST_LOOKUP),
           'destination MAC → reg7; broadcast → local ports (through the '
           'ingress stages) and chassis; router MAC → reg5 = router key; '
           'IP multicast of a snooping network → 56'),
    _stage(MCAST_LOOKUP, 'mcast_lookup', ('multicast',), ('multicast',),
           (INGRESS_LB, MCAST_RELAY),
           'IGMP/MLD → controller (snooping; never to other ports); a '
           'joined group → its local members (through the ingress stages) '
           'and one copy per chassis with members, then → 57 if a relaying '
           'router has members elsewhere; link-local groups flooded; '
           'others dropped (or flooded: flood_unregistered)'),
    _stage(MCAST_RELAY, 'mcast_relay', ('multicast',), ('multicast',),
           (INGRESS_LB,),
           'routed multicast (router multicast_relay): TTL ≤ 1 dropped; '
           'else TTL − 1, the router\'s MAC, and the group\'s members on '
           'each other subnet of the router (local ones, one copy per '
           'chassis)'),
    _stage(L3_LOOKUP, 'l3_lookup', ('l3',), ('l3', 'nat', 'router_icmp'),
           (EGRESS_NAT, EGRESS),
           'router + destination IP → port (TTL − 1, MACs rewritten); '
           'extra routes; to NAT; unreachable → controller'),
    _stage(EGRESS_NAT, 'egress_nat', ('nat',), ('nat',), (EGRESS_NAT_OUT,),
           'routed to the external network → conntrack (NAT zone)'),
    _stage(EGRESS_NAT_OUT, 'egress_nat_out', ('nat',), ('nat',),
           (EGRESS_NAT_OUT, EGRESS_PROVIDER),
           'new connections SNATed to the FIP or chassis address, then to '
           'the gateway\'s MAC, out through 80'),
    _stage(EGRESS, 'egress', ('l2', 'l2_normal'),
           ('l2', 'l2_normal', 'tunneling', 'provider'),
           (EGRESS_PROVIDER, INGRESS_LB),
           'reg7 = local port → ingress stages; remote port → tunnel to its '
           'chassis or out of the provider patch'),
    _stage(EGRESS_PROVIDER, 'egress_provider', ('provider',),
           ('provider',), (),
           'out of a provider network\'s patch (VLAN tag pushed)'),
    _stage(INGRESS_TUNNEL, 'ingress_lookup', ('tunneling',),
           ('tunneling', 'provider', 'multicast'),
           (INGRESS_LB, MCAST_ARRIVAL),
           'arrivals from a tunnel or provider patch: destination MAC → '
           'reg7; broadcast → local ports; IP multicast of a snooping '
           'network → 101'),
    _stage(MCAST_ARRIVAL, 'mcast_arrival', ('multicast',), ('multicast',),
           (INGRESS_LB,),
           'a joined group → its local members; link-local groups → every '
           'local port; others dropped (or flooded); IGMP/MLD dropped'),
    _stage(INGRESS_LB, 'ingress_lb', ('lb',), ('lb',),
           (INGRESS_LB, TAP_IN_PRE, EGRESS_NAT),
           'from a member\'s address and port → conntrack (LB zone); '
           'valid replies of balanced connections un-DNATed',
           pass_through=TAP_IN_PRE),
    _stage(TAP_IN_PRE, 'tap_in_pre', ('tap',), ('tap',),
           (INGRESS_CT, TAP_DELIVER),
           'what a tapped port receives, before its security groups → a '
           'copy to each tap service', pass_through=INGRESS_CT),
    _stage(INGRESS_CT, 'ingress_ct', ('security_groups',),
           ('security_groups', 'fwaas'),
           (FW_INGRESS_ROUTER, TAP_IN),
           'IP to a port with security groups (or under a firewall group) '
           '→ conntrack; ND and MLD pass', pass_through=TAP_IN),
    _stage(FW_INGRESS_ROUTER, 'fw_ingress_router', ('fwaas',), ('fwaas',),
           (FW_INGRESS_ROUTER_RULES, FW_INGRESS, INGRESS_SG),
           'established/related pass; a new connection routed in through '
           'an interface (source MAC) whose group has an ingress policy → '
           'reg8 = group key', pass_through=INGRESS_SG),
    _stage(FW_INGRESS_ROUTER_RULES, 'fw_ingress_router_rules', ('fwaas',),
           ('fwaas',), (FW_INGRESS,),
           'that group\'s ingress rules in policy order'),
    _stage(FW_INGRESS, 'fw_ingress', ('fwaas',), ('fwaas',),
           (FW_INGRESS_RULES, INGRESS_SG),
           'new connection to a port in a firewall group with an ingress '
           'policy → reg8 = group key'),
    _stage(FW_INGRESS_RULES, 'fw_ingress_rules', ('fwaas',), ('fwaas',),
           (INGRESS_SG,),
           'the group\'s ingress rules in policy order (allow, deny, '
           'reject → controller); no match: dropped'),
    _stage(INGRESS_SG, 'ingress_sg', ('security_groups',),
           ('security_groups', 'fwaas'), (TAP_IN,),
           'established/related pass; new connections need an ingress rule '
           '(a port without groups under a firewall: committed)'),
    _stage(TAP_IN, 'tap_in', ('tap',), ('tap',),
           (INGRESS_DISPATCH, TAP_DELIVER),
           'what a tapped port receives, after its security groups → a '
           'copy to each tap service', pass_through=INGRESS_DISPATCH),
    _stage(INGRESS_DISPATCH, 'ingress_dispatch', ('l2',), ('l2',), (),
           'output to the local port in reg7 (subport: VLAN pushed); a '
           'flooded copy for its own sender dropped'),
    _stage(TAP_DELIVER, 'tap_deliver', ('tap',), ('tap',), (),
           'a copy (reg10 = tap service key, reg11 = VLAN of a subport) → '
           'the service port, or over Geneve with the reserved VNI to its '
           'chassis; VLAN pushed and popped around the output'),
)
BY_ID = {stage.id: stage for stage in STAGES}
# Stages whose flows the switch learns (``learn`` actions): not the
# agent's, so not counted as drift.
LEARNED = (LB_AFFINITY,)
# Optional stages: when no enabled app owns the table, the controller
# installs a table-miss flow going on to the next stage.
PASS_THROUGH = {s.id: s.pass_through for s in STAGES
                if s.pass_through is not None}


class PipelineError(ValueError):
    """A flow breaks the declared pipeline; the message names the app and
    the stage."""


def name(table):
    """``55 (l2_lookup)``: a table as messages name it."""
    stage = BY_ID.get(table)
    return f'{table} ({stage.name})' if stage else str(table)


def continuations(flow):
    """The tables a flow hands packets on to: its goto, resubmits and
    conntrack recirculations."""
    out = [] if flow.goto is None else [flow.goto]
    for action in flow.actions:
        if action[0] == 'resubmit':
            out.append(action[1])
        elif action[0] == 'ct' and action[2] is not None:
            out.append(action[2])
    return out


def check(app, flow):
    """Raise PipelineError unless app may write flow where it does."""
    stage = BY_ID.get(flow.table)
    if stage is None:
        raise PipelineError(
            f'app {app}: flow into table {flow.table}, which the pipeline '
            f'does not declare (priority {flow.priority}, match '
            f'{dict(flow.match)})')
    if not stage.may_write(app):
        raise PipelineError(
            f'app {app} may not write flows in stage {name(stage.id)} '
            f'(writers: {", ".join(sorted(stage.writers))})')
    for table in continuations(flow):
        if table not in stage.next:
            allowed = ', '.join(name(t) for t in sorted(stage.next))
            raise PipelineError(
                f'app {app}: stage {name(stage.id)} may not go on to '
                f'{name(table)} (declared next: {allowed or "none"})')


def owners(app_names):
    """{table: owning app} among the enabled apps; ValueError if two
    enabled apps own one stage."""
    out = {}
    for stage in STAGES:
        mine = [a for a in stage.owners if a in app_names]
        if len(mine) > 1:
            raise ValueError(f'apps {" and ".join(mine)} both own stage '
                             f'{name(stage.id)}')
        if mine:
            out[stage.id] = mine[0]
    return out


def markdown():
    """The pipeline as the README's Markdown table."""
    lines = ['| table | stage | owner | writers | next | purpose |',
             '|---|---|---|---|---|---|']
    for s in STAGES:
        owner = ' or '.join(s.owners)
        if s.pass_through is not None:
            owner += f' (else → {s.pass_through})'
        nxt = ', '.join(str(t) for t in sorted(s.next)) or 'out'
        lines.append(f'| {s.id} | {s.name} | {owner} | '
                     f'{", ".join(sorted(s.writers))} | {nxt} | '
                     f'{s.purpose} |')
    return '\n'.join(lines) + '\n'


NAT_ZONE = 0xffff       # conntrack zone of FIP/SNAT (network keys are below)
LB_ZONE = 0xfffe        # conntrack zone of load balancer DNAT
HAIRPIN_ZONE = 0xfffd   # ... and of the SNAT of a member to its own VIP

REG_SRC = 'reg6'
REG_DST = 'reg7'
REG_ROUTER = 'reg5'
REG_FLOOD = 'reg4'      # 1 on the copies of a flooded packet (see l2)
REG_LISTENER = 'reg2'   # load balancer listener key (see lb)
REG_SLOT = 'reg3'       # its multipath hash slot
REG_AFFINITY = 'reg1'   # a persistent client's member address
REG_FROM_FIP = 'reg0'   # 1: came in through a VIP's floating IP
REG_FW_GROUP = 'reg8'   # firewall group key (see fwaas)
REG_FW_VERDICT = 'reg9'  # a logged or rejected packet's rule and verdict
REG_TAP = 'reg10'       # the tap service a copy goes to (see tap)
REG_TAP_VLAN = 'reg11'  # ... and the VLAN to push on it (0: none)
TAP_VNI = 2 ** 24 - 1   # tunnel key of mirrored traffic (no network's)

MULTICAST = ('01:00:00:00:00:00', '01:00:00:00:00:00')
IPV4_MULTICAST_MAC = ('01:00:5e:00:00:00', 'ff:ff:ff:80:00:00')
IPV6_MULTICAST_MAC = ('33:33:00:00:00:00', 'ff:ff:00:00:00:00')
ETH_ARP = 0x0806
ETH_IP = 0x0800
ETH_IPV6 = 0x86dd
ICMPV6 = 58
IGMP = 2
ICMPV6_RS, ICMPV6_RA, ICMPV6_NS, ICMPV6_NA = 133, 134, 135, 136

# ct_state bits (ovs-fields(7)).
CT_NEW, CT_EST, CT_REL, CT_RPL, CT_INV, CT_TRK = 0x01, 0x02, 0x04, 0x08, \
    0x10, 0x20
CT_STATE_NEW = (CT_NEW | CT_TRK, CT_NEW | CT_EST | CT_REL | CT_INV | CT_TRK)
CT_STATE_EST = (CT_EST | CT_TRK, CT_EST | CT_REL | CT_INV | CT_TRK)
CT_STATE_REL = (CT_REL | CT_TRK, CT_REL | CT_INV | CT_TRK)
CT_STATE_INV = (CT_INV | CT_TRK, CT_INV | CT_TRK)
CT_STATE_VALID = (CT_TRK, CT_INV | CT_TRK)
CT_STATE_REPLY = (CT_RPL | CT_TRK, CT_RPL | CT_INV | CT_TRK)
CT_DNAT = 0x80
CT_STATE_DNAT = (CT_DNAT | CT_TRK, CT_DNAT | CT_INV | CT_TRK)

TUNNEL_PORTS = {'geneve': 'tun-geneve', 'vxlan': 'tun-vxlan'}
VLAN_PRESENT = 0x1000   # OFPVID_PRESENT
PROVIDER_TYPES = ('flat', 'vlan')


def patch_names(bridge):
    """(br-int side, provider bridge side) names of a mapping's patch."""
    return f'int-{bridge}'[:15], f'phy-{bridge}'[:15]


if __name__ == '__main__':
    print(markdown(), end='')
