"""Table 45: IPv6 neighbour solicitations for any address known in the
network (ports, their allowed address pairs, router interfaces and their
link-local addresses) are answered on the chassis by the controller, from
the NB model, so they never cross a tunnel (the IPv6 counterpart of the
ARP responder; building the advertisement with its options in flows is
not practical, so it is a packet-in, bounded by the switch's packet-in
rate limit). Duplicate address detection (from ::) and solicitations for
unknown addresses are switched as usual."""
import ipaddress

from dragonflow.controller import apps
from dragonflow.controller import packets
from dragonflow.controller import pipeline as pl
from dragonflow.model.logical_port import link_local

ROUTER, SOLICITED, OVERRIDE = 0b100, 0b010, 0b001


def answers(state, network):
    """{IPv6 address: (mac, is_router)} the network knows."""
    out = {}
    for port in state.ports(network.id):
        if not port.macs:
            continue
        addresses = list(port.ips) + [
            p['ip_address'] for p in port.allowed_address_pairs
            if '/' not in p['ip_address']]
        for ip in addresses:
            if ipaddress.ip_address(ip).version == 6:
                out.setdefault(str(ipaddress.ip_address(ip)),
                               (port.macs[0], False))
    for rport in state.router_ports(network.id):
        if ipaddress.ip_address(rport.ip).version == 6:
            out[str(ipaddress.ip_address(rport.ip))] = (rport.mac, True)
            out[link_local(rport.mac)] = (rport.mac, True)
    return out


def icmp6_match(network, kind, **extra):
    return dict({'metadata': network.unique_key, 'eth_type': pl.ETH_IPV6,
                 'ip_proto': pl.ICMPV6, 'icmpv6_type': kind}, **extra)


class NdResponderApp(apps.App):
    name = 'nd_responder'
    cookie = 13
    packet_ins = {pl.ND_RESPONDER: 'neighbour_solicitation'}

    def global_flows(self, state):
        return [self.flow(pl.ND_RESPONDER, 0, goto=pl.L2_LOOKUP)]

    def network_flows(self, state, network):
        known = answers(state, network)
        if not known:
            return []
        out = [self.flow(pl.ND_RESPONDER, 110, icmp6_match(
            network, pl.ICMPV6_NS, ipv6_src='::'), goto=pl.L2_LOOKUP)]
        for ip in sorted(known):
            out.append(self.flow(pl.ND_RESPONDER, 100, icmp6_match(
                network, pl.ICMPV6_NS, ipv6_nd_target=ip), [('controller',)]))
        return out

    def neighbour_solicitation(self, state, msg, send_packet):
        from os_ken.lib.packet import ethernet, icmpv6, ipv6
        found = packets.icmpv6_from_port(state, msg, pl.ICMPV6_NS)
        if found is None:
            return
        pkt, icmp, port = found
        network = state.network(port.network_id)
        target = str(ipaddress.ip_address(icmp.data.dst))
        mac, is_router = answers(state, network).get(target, (None, False))
        if mac is None:
            return
        eth = pkt.get_protocol(ethernet.ethernet)
        ip6 = pkt.get_protocol(ipv6.ipv6)
        state.send_to(port, packets.ipv6_frame(
            mac, eth.src, target, ip6.src, pl.ICMPV6, icmpv6.icmpv6(
                type_=pl.ICMPV6_NA, code=0, data=icmpv6.nd_neighbor(
                    res=(ROUTER if is_router else 0) | SOLICITED | OVERRIDE,
                    dst=target, option=icmpv6.nd_option_tla(
                        length=1, hw_src=mac)))), send_packet)


APP = NdResponderApp
