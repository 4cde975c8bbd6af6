"""Table 25: ARP requests for any address known in the network (ports,
their allowed address pairs, router interfaces) are answered on the
chassis, from the NB model, so they never cross a tunnel. The reply goes
back to the asking port through the dispatch table (115), which tags it
for a trunk subport."""
import ipaddress

from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl


def answers(state, network):
    """(ip, mac) of every IPv4 address the network knows."""
    out = {}
    for port in state.ports(network.id):
        if not port.macs:
            continue
        for ip in port.ips:
            if ipaddress.ip_address(ip).version == 4:
                out[ip] = port.macs[0]
        for pair in port.allowed_address_pairs:
            address = pair['ip_address']
            if '/' not in address and \
                    ipaddress.ip_address(address).version == 4:
                out.setdefault(address, pair.get('mac_address')
                               or port.macs[0])
    for rport in state.router_ports(network.id):
        if ipaddress.ip_address(rport.ip).version == 4:
            out[rport.ip] = rport.mac
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

    def network_flows(self, state, network):
        out = []
        for ip, mac in answers(state, network):
            out.append(self.flow(
                pl.ARP_RESPONDER, 100,
                {'metadata': network.unique_key, 'eth_type': pl.ETH_ARP,
                 'arp_op': 1, 'arp_tpa': ip},
                reply_actions(ip, mac) +
                [('move', pl.REG_SRC, pl.REG_DST, 32)],
                goto=pl.INGRESS_DISPATCH))
        return out


APP = ArpResponderApp
