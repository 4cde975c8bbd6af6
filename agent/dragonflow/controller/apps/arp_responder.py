"""Table 25: ARP requests for any address known in the network (ports,
their allowed address pairs, router interfaces) are answered on the
chassis, from the NB model, so they never cross a tunnel. The reply goes
back to the asking port through the dispatch table (115), which tags it
for a trunk subport.

A port's own addresses are its own flows (priority 100); the addresses
of allowed address pairs, which several ports may share, are the
network's (90: a port's address wins; the first port by id wins among
pairs), as are router interfaces (110: they win over everything)."""
import ipaddress

from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl

ROUTER_PRIORITY, PORT_PRIORITY, PAIR_PRIORITY = 110, 100, 90


def is_v4(ip):
    return ipaddress.ip_address(ip).version == 4


def pair_answers(state, network):
    """(ip, mac) of the IPv4 allowed address pairs of the network's
    ports (single addresses, first port by id)."""
    out = {}
    for port in state.paired_ports(network.id):
        if not port.macs:
            continue
        for pair in port.allowed_address_pairs:
            address = pair['ip_address']
            if '/' not in address and is_v4(address):
                out.setdefault(address, pair.get('mac_address')
                               or port.macs[0])
    return sorted(out.items())


def reply_actions(ip, mac):
    """Turn an ARP request for ip into the reply from mac (in place; the
    caller sends it back where it came from)."""
    return [('move', 'eth_src', 'eth_dst', 48),
            ('set_field', 'eth_src', mac),
            ('set_field', 'arp_op', 2),
            ('move', 'arp_sha', 'arp_tha', 48),
            ('move', 'arp_spa', 'arp_tpa', 32),
            ('set_field', 'arp_sha', mac),
            ('set_field', 'arp_spa', ip)]


class ArpResponderApp(apps.App):
    name = 'arp_responder'
    cookie = 3

    def global_flows(self, state):
        return [self.flow(pl.ARP_RESPONDER, 0, goto=pl.DHCP)]

    def remote_port_shapes_network(self, state, port):
        # The address pairs' answers list the paired ports.
        return bool(port.allowed_address_pairs)

    def network_flows(self, state, network):
        routers = [(r.ip, r.mac) for r in state.router_ports(network.id)
                   if is_v4(r.ip)]
        return [self._answer(network, ip, mac, ROUTER_PRIORITY)
                for ip, mac in routers] + \
            [self._answer(network, ip, mac, PAIR_PRIORITY)
             for ip, mac in pair_answers(state, network)]

    def port_flows(self, state, port):
        network = state.network(port.network_id)
        if network is None or not port.macs:
            return []
        return [self._answer(network, ip, port.macs[0], PORT_PRIORITY)
                for ip in port.ips if is_v4(ip)]

    def _answer(self, network, ip, mac, priority):
        return self.flow(
            pl.ARP_RESPONDER, priority,
            {'metadata': network.unique_key, 'eth_type': pl.ETH_ARP,
             'arp_op': 1, 'arp_tpa': ip},
            reply_actions(ip, mac) + [('move', pl.REG_SRC, pl.REG_DST, 32)],
            goto=pl.INGRESS_DISPATCH)


APP = ArpResponderApp
