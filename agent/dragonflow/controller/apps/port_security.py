"""Table 5: a port may only send from its own MACs and IPs (and its allowed
address pairs); DHCP discovery from 0.0.0.0 is allowed; no port may answer
as a DHCP server. IPv6 the same way, plus the port's link-local address
(from its MAC) and duplicate address detection from ::; a neighbour
advertisement must be for one of the port's addresses; no port may send
router advertisements or answer as a DHCPv6 server. With port security
off, anything goes (but still no DHCP server and no RA)."""
import ipaddress

from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl
from dragonflow.model.logical_port import link_local

NEXT = pl.TAP_OUT_PRE


def _match(address, version=4):
    """(value, mask) match for an address or CIDR of that IP version;
    None for the other version."""
    net = ipaddress.ip_network(address, strict=False)
    if net.version != version:
        return None
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return (str(net.network_address), str(net.netmask))


def _v4(address):
    return _match(address, 4)


def _v6(address):
    return _match(address, 6)


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

    def global_flows(self, state):
        return [self.flow(pl.PORT_SECURITY, 0)]

    def port_flows(self, state, port):
        if not state.is_local(port):
            return []
        key = {pl.REG_SRC: port.unique_key}
        out = [
            # Never a DHCP server, whatever port security says.
            self.flow(pl.PORT_SECURITY, 300, dict(
                key, eth_type=pl.ETH_IP, ip_proto=17, udp_src=67)),
            # Nor an IPv6 router or DHCPv6 server.
            self.flow(pl.PORT_SECURITY, 300, dict(
                key, eth_type=pl.ETH_IPV6, ip_proto=pl.ICMPV6,
                icmpv6_type=pl.ICMPV6_RA)),
            self.flow(pl.PORT_SECURITY, 300, dict(
                key, eth_type=pl.ETH_IPV6, ip_proto=17, udp_src=547)),
        ]
        if not port.port_security_enabled:
            out.append(self.flow(pl.PORT_SECURITY, 100, key, goto=NEXT))
            return out
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
        return out + self._v6_flows(port, key)

    def _v6_flows(self, port, key):
        mac = port.macs[0]
        pairs = [(m, _v6(a)) for m, a in allowed_pairs(port) if _v6(a)]
        pairs.append((mac, link_local(mac)))
        icmp6 = dict(key, eth_type=pl.ETH_IPV6, ip_proto=pl.ICMPV6)
        out = [
            # Duplicate address detection (and MLD) before it has one.
            self.flow(pl.PORT_SECURITY, 200, dict(
                icmp6, eth_src=mac, ipv6_src='::',
                icmpv6_type=pl.ICMPV6_NS), goto=NEXT),
            self.flow(pl.PORT_SECURITY, 200, dict(
                icmp6, eth_src=mac, ipv6_src='::', icmpv6_type=143),
                goto=NEXT),
            # A neighbour advertisement only for its own addresses.
            self.flow(pl.PORT_SECURITY, 250, dict(
                icmp6, icmpv6_type=pl.ICMPV6_NA)),
        ]
        for pair_mac, address in pairs:
            out.append(self.flow(pl.PORT_SECURITY, 200, dict(
                key, eth_src=pair_mac, eth_type=pl.ETH_IPV6,
                ipv6_src=address), goto=NEXT))
            if not isinstance(address, tuple):
                out.append(self.flow(pl.PORT_SECURITY, 260, dict(
                    icmp6, eth_src=pair_mac, icmpv6_type=pl.ICMPV6_NA,
                    ipv6_nd_target=address), goto=NEXT))
        return out


APP = PortSecurityApp
