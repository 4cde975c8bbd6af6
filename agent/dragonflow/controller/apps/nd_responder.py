"""Table 45: IPv6 neighbour solicitations for any address known in the
network (ports, their allowed address pairs, router interfaces and their
link-local addresses) are answered on the chassis by the controller, from
the NB model, so they never cross a tunnel (the IPv6 counterpart of the
ARP responder; building the advertisement with its options in flows is
not practical, so it is a packet-in, bounded by the switch's packet-in
rate limit). Duplicate address detection (from ::) and solicitations for
unknown addresses are switched as usual.

As for ARP: a port's own addresses are its own flows (priority 100),
allowed address pairs (90) and router interfaces (105) the network's;
duplicate address detection (110) is above them all."""
import ipaddress

from dragonflow.controller import apps
from dragonflow.controller import packets
from dragonflow.controller import pipeline as pl
from dragonflow.model.logical_port import link_local

ROUTER, SOLICITED, OVERRIDE = 0b100, 0b010, 0b001
DAD_PRIORITY, ROUTER_PRIORITY, PORT_PRIORITY, PAIR_PRIORITY = \
    110, 105, 100, 90


def _v6(ip):
    return ipaddress.ip_address(ip).version == 6


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

    def remote_port_shapes_network(self, state, port):
        # The address pairs' answers list the paired ports.
        return bool(port.allowed_address_pairs)

    def network_flows(self, state, network):
        if not any(s.network.version == 6
                   for s in state.subnets(network.id)):
            return []
        routers = set()
        for rport in state.router_ports(network.id):
            if _v6(rport.ip):
                routers |= {str(ipaddress.ip_address(rport.ip)),
                            link_local(rport.mac)}
        pairs = {str(ipaddress.ip_address(p['ip_address']))
                 for port in state.paired_ports(network.id)
                 for p in port.allowed_address_pairs
                 if '/' not in p['ip_address'] and _v6(p['ip_address'])}
        return [self.flow(pl.ND_RESPONDER, DAD_PRIORITY, icmp6_match(
            network, pl.ICMPV6_NS, ipv6_src='::'), goto=pl.L2_LOOKUP)] + \
            [self._ask(network, ip, ROUTER_PRIORITY) for ip in
             sorted(routers)] + \
            [self._ask(network, ip, PAIR_PRIORITY) for ip in sorted(pairs)]

    def port_flows(self, state, port):
        network = state.network(port.network_id)
        if network is None or not port.macs:
            return []
        return [self._ask(network, str(ipaddress.ip_address(ip)),
                          PORT_PRIORITY) for ip in port.ips if _v6(ip)]

    def _ask(self, network, ip, priority):
        """Solicitations for ip go to the controller (which answers)."""
        return self.flow(pl.ND_RESPONDER, priority, icmp6_match(
            network, pl.ICMPV6_NS, ipv6_nd_target=ip), [('controller',)])

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
