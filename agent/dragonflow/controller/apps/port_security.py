"""Table 5: a port may only send from its own MACs and IPs (and its allowed
address pairs); DHCP discovery from 0.0.0.0 is allowed; no port may answer
as a DHCP server. With port security off, anything goes (but still no DHCP
server)."""
import ipaddress

from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl

NEXT = pl.EGRESS_CT


def _v4(address):
    """(value, mask) match for an IPv4 address or CIDR; None for IPv6."""
    net = ipaddress.ip_network(address, strict=False)
    if net.version != 4:
        return None
    if net.prefixlen == 32:
        return str(net.network_address)
    return (str(net.network_address), str(net.netmask))


def allowed_pairs(port):
    """(mac, ip-or-cidr) pairs the port may send from."""
    pairs = [(mac, ip) for mac in port.macs[:1] for ip in port.ips]
    for pair in port.allowed_address_pairs:
        pairs.append((pair.get('mac_address') or port.macs[0],
                      pair['ip_address']))
    return pairs


class PortSecurityApp(apps.App):
    name = 'port_security'
    cookie = 2
    tables = (pl.PORT_SECURITY,)

    def global_flows(self, state):
        return [self.flow(pl.PORT_SECURITY, 0)]

    def network_flows(self, state, network):
        out = []
        for port in state.local_ports(network.id):
            key = {pl.REG_SRC: port.unique_key}
            # Never a DHCP server, whatever port security says.
            out.append(self.flow(pl.PORT_SECURITY, 300, dict(
                key, eth_type=pl.ETH_IP, ip_proto=17, udp_src=67)))
            if not port.port_security_enabled:
                out.append(self.flow(pl.PORT_SECURITY, 100, key, goto=NEXT))
                continue
            for mac, address in allowed_pairs(port):
                v4 = _v4(address)
                if v4 is None:
                    continue
                out.append(self.flow(pl.PORT_SECURITY, 200, dict(
                    key, eth_src=mac, eth_type=pl.ETH_IP, ipv4_src=v4),
                    goto=NEXT))
                out.append(self.flow(pl.PORT_SECURITY, 200, dict(
                    key, eth_src=mac, eth_type=pl.ETH_ARP, arp_sha=mac,
                    arp_spa=v4), goto=NEXT))
            for mac in port.macs[:1]:
                out.append(self.flow(pl.PORT_SECURITY, 200, dict(
                    key, eth_src=mac, eth_type=pl.ETH_IP, ip_proto=17,
                    ipv4_src='0.0.0.0', udp_src=68, udp_dst=67), goto=NEXT))
        return out


APP = PortSecurityApp
