"""IPv6 router advertisements from router interfaces (flows in table 45,
answers by packet-in and from the tick), on every chassis for its own
ports.

A router interface on an IPv6 subnet whose ``ipv6_ra_mode`` is set
advertises itself (from its link-local address, as the default router)
with the subnet's prefix: autonomous (SLAAC) when ``ipv6_address_mode`` is
slaac or dhcpv6-stateless, the O flag for dhcpv6-stateless and the M flag
for dhcpv6-stateful, and the network's MTU. Router solicitations are
answered at once; unsolicited advertisements go to the network's local
ports every ``INTERVAL`` seconds and when a port or an interface appears.
DHCPv6 itself is the dhcpv6 app's."""
import time

from dragonflow.controller import apps
from dragonflow.controller import packets
from dragonflow.controller import pipeline as pl
from dragonflow.controller.apps.nd_responder import icmp6_match
from dragonflow.model.logical_port import link_local

INTERVAL = 30.0
MANAGED, OTHER = 0b10, 0b01          # RA M and O flags
ON_LINK, AUTONOMOUS = 0b100, 0b010   # prefix information L and A flags
ALL_NODES = ('33:33:00:00:00:01', 'ff02::1')


def advertising(state, network):
    """(router port, subnet) pairs of the network that advertise."""
    out = []
    for rport, _ in state.enabled_interfaces(network.id):
        subnet = state.get('subnet', rport.subnet_id)
        if subnet is not None and subnet.network.version == 6 and \
                subnet.ipv6_ra_mode:
            out.append((rport, subnet))
    return out


def router_advertisement(network, rport, subnet, eth_dst, ip_dst):
    from os_ken.lib.packet import icmpv6
    flags = {'dhcpv6-stateful': MANAGED,
             'dhcpv6-stateless': OTHER}.get(subnet.ipv6_ra_mode, 0)
    prefix_flags = ON_LINK | (AUTONOMOUS if subnet.ipv6_address_mode in (
        'slaac', 'dhcpv6-stateless') else 0)
    mtu = icmpv6.nd_option_mtu(mtu=network.mtu)
    # os-ken's nd_option_mtu lacks the _MIN_LEN its base's __len__ reads.
    mtu._MIN_LEN = getattr(mtu, '_MIN_LEN', mtu._LEN)
    options = [
        icmpv6.nd_option_sla(length=1, hw_src=rport.mac),
        mtu,
        icmpv6.nd_option_pi(length=4, pl=subnet.network.prefixlen,
                            res1=prefix_flags, val_l=86400, pre_l=14400,
                            prefix=str(subnet.network.network_address)),
    ]
    return packets.ipv6_frame(
        rport.mac, eth_dst, link_local(rport.mac), ip_dst, pl.ICMPV6,
        icmpv6.icmpv6(type_=pl.ICMPV6_RA, code=0,
                      data=icmpv6.nd_router_advert(
                          ch_l=64, res=flags, rou_l=1800, rea_t=0, ret_t=0,
                          options=options)))


class RouterAdvertisementApp(apps.App):
    name = 'router_advertisement'
    cookie = 14
    packet_ins = {pl.ND_RESPONDER: 'router_solicitation'}

    def __init__(self, controller=None):
        super().__init__(controller)
        self.sent = {}                  # (port id, router port id) -> time

    def network_flows(self, state, network):
        if not advertising(state, network):
            return []
        return [self.flow(pl.ND_RESPONDER, 100,
                          icmp6_match(network, pl.ICMPV6_RS),
                          [('controller',)])]

    def router_solicitation(self, state, msg, send_packet):
        from os_ken.lib.packet import ethernet, ipv6
        found = packets.icmpv6_from_port(state, msg, pl.ICMPV6_RS)
        if found is None:
            return
        pkt, _, port = found
        network = state.network(port.network_id)
        eth = pkt.get_protocol(ethernet.ethernet)
        ip6 = pkt.get_protocol(ipv6.ipv6)
        for rport, subnet in advertising(state, network):
            dst = (eth.src, ip6.src) if ip6.src != '::' else ALL_NODES
            state.send_to(port, router_advertisement(
                network, rport, subnet, *dst), send_packet)

    def tick(self, state, send_packet):
        """An advertisement to each local port from each advertising
        interface of its network: at once for a new pair, then every
        INTERVAL seconds."""
        now = time.monotonic()
        sent = {}
        for net_id in state.local_networks():
            network = state.network(net_id)
            for rport, subnet in advertising(state, network):
                for port in state.local_ports(net_id):
                    key = (port.id, rport.id)
                    last = self.sent.get(key)
                    if last is not None and now - last < INTERVAL:
                        sent[key] = last
                        continue
                    sent[key] = now
                    state.send_to(port, router_advertisement(
                        network, rport, subnet, *ALL_NODES), send_packet)
        self.sent = sent        # pairs that went away are forgotten


APP = RouterAdvertisementApp
