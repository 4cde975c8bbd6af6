"""The OpenFlow pipeline: table numbers and register conventions.

Registers: ``reg6`` source port key, ``reg7`` destination port key,
``reg5`` router key, ``metadata`` network key (Dragonflow's conventions);
``reg4`` marks the copies of a flooded packet.
Conntrack zone = network key (16 bits).

Egress (from a local port): 0 classify, 5 port security, 10/15 egress
conntrack + security groups, 20 service function chains, 25 ARP
responder, 30 DHCP, 45 IPv6 ND
responder and router advertisements, 55 L2 lookup,
60 routing (70/71: NAT towards the external network, then 80 out of its
provider bridge), 75 to the destination port (local: on to ingress;
remote: one tunnel hop). Ingress (to a local port, from 75, a tunnel or a
provider bridge): 50/51 NAT from the external network (provider arrivals
only), 100 destination lookup, 105/110 ingress conntrack + security
groups, 115 dispatch to the port.
"""
CLASSIFIER = 0          # ingress from local ports and tunnels
PORT_SECURITY = 5       # egress anti-spoofing
EGRESS_CT = 10          # egress: send IP of protected ports to conntrack
EGRESS_SG = 15          # egress security group rules
SFC = 20                # service function chains: steer to the next hop
ARP_RESPONDER = 25
DHCP = 30
ND_RESPONDER = 45       # IPv6 neighbour solicitations, router solicitations
INGRESS_NAT = 50        # from a provider bridge: ARP for our external
                        # addresses, conntrack NAT lookup
INGRESS_NAT_ROUTE = 51  # un-NATed/DNATed packets routed to their port
L2_LOOKUP = 55
L3_LOOKUP = 60          # distributed routing
EGRESS_NAT = 70         # routed to the external network: NAT lookup
EGRESS_NAT_OUT = 71     # SNAT/FIP commit, then out to the external network
EGRESS = 75             # to the destination port: local or over a tunnel
EGRESS_PROVIDER = 80    # out to a provider network's bridge
INGRESS_TUNNEL = 100    # from a tunnel or provider bridge: destination lookup
INGRESS_CT = 105        # ingress: send IP to protected ports to conntrack
INGRESS_SG = 110        # ingress security group rules
INGRESS_DISPATCH = 115  # output to the local port in reg7

# Optional stages: when no enabled app owns the table, the controller
# installs a table-miss flow going on to the next stage.
PASS_THROUGH = {
    EGRESS_CT: SFC,
    SFC: ARP_RESPONDER,
    INGRESS_CT: INGRESS_DISPATCH,
    INGRESS_NAT: INGRESS_TUNNEL,
    ND_RESPONDER: L2_LOOKUP,
}
NAT_ZONE = 0xffff       # conntrack zone of FIP/SNAT (network keys are below)

REG_SRC = 'reg6'
REG_DST = 'reg7'
REG_ROUTER = 'reg5'
REG_FLOOD = 'reg4'      # 1 on the copies of a flooded packet (see l2)

MULTICAST = ('01:00:00:00:00:00', '01:00:00:00:00:00')
ETH_ARP = 0x0806
ETH_IP = 0x0800
ETH_IPV6 = 0x86dd
ICMPV6 = 58
ICMPV6_RS, ICMPV6_RA, ICMPV6_NS, ICMPV6_NA = 133, 134, 135, 136

# ct_state bits (ovs-fields(7)).
CT_NEW, CT_EST, CT_REL, CT_RPL, CT_INV, CT_TRK = 0x01, 0x02, 0x04, 0x08, \
    0x10, 0x20
CT_STATE_NEW = (CT_NEW | CT_TRK, CT_NEW | CT_EST | CT_REL | CT_INV | CT_TRK)
CT_STATE_EST = (CT_EST | CT_TRK, CT_EST | CT_REL | CT_INV | CT_TRK)
CT_STATE_REL = (CT_REL | CT_TRK, CT_REL | CT_INV | CT_TRK)
CT_STATE_INV = (CT_INV | CT_TRK, CT_INV | CT_TRK)
CT_STATE_VALID = (CT_TRK, CT_INV | CT_TRK)

TUNNEL_PORTS = {'geneve': 'tun-geneve', 'vxlan': 'tun-vxlan'}
VLAN_PRESENT = 0x1000   # OFPVID_PRESENT
PROVIDER_TYPES = ('flat', 'vlan')


def patch_names(bridge):
    """(br-int side, provider bridge side) names of a mapping's patch."""
    return f'int-{bridge}'[:15], f'phy-{bridge}'[:15]
