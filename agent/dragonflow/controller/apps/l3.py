"""Distributed routing (tables 55 and 60): every chassis routes for its own
ports. A packet sent to a router interface's MAC leaves L2 lookup for the
router (``reg5`` = router key); table 60 knows every port address on the
router's other subnets and rewrites the packet as the router would: source
MAC of the outgoing interface, destination MAC of the port, TTL
decremented, destination network and port key set. Extra routes of the
router whose next hop is a port (a VM acting as a router) send matching
destinations to that port the same way. Delivery is then the ordinary
egress (local port, or one tunnel hop to the port's chassis).

A router interface that appears on a network with ports here is announced
to them with gratuitous ARPs (a re-created interface has a new MAC, which
the VMs would otherwise keep sending to until their ARP entry expires)."""
import ipaddress

from dragonflow.controller import apps
from dragonflow.controller import arp
from dragonflow.controller import pipeline as pl


# Host routes to ports win over extra routes (50 + prefix length, up to
# 178 for IPv6), which win over router_icmp (25) and NAT (2).
HOST_ROUTE = 200
EXTRA_ROUTE = 50


class L3App(apps.App):
    name = 'l3'
    cookie = 7

    def __init__(self, controller=None):
        super().__init__(controller)
        self.announcer = arp.Announcer()

    def global_flows(self, state):
        return [self.flow(pl.L3_LOOKUP, 0)]

    def tick(self, state, send_packet):
        interfaces = set()
        for net_id in state.local_networks():
            for rport in state.router_ports(net_id):
                if ipaddress.ip_address(rport.ip).version == 4:
                    interfaces.add((net_id, rport.ip, rport.mac))
        for net_id, ip, mac in self.announcer.due(interfaces):
            data = arp.arp_request(mac, ip, ip)
            for port in state.local_ports(net_id):
                state.send_to(port, data, send_packet)

    def remote_port_shapes_network(self, state, port):
        # Extra routes go to the port of the network with the next hop.
        return any(router.routes for _, router in
                   state.enabled_interfaces(port.network_id))

    def network_flows(self, state, network):
        out = []
        for rport, router in state.enabled_interfaces(network.id):
            # Into the router from this network.
            out.append(self.flow(
                pl.L2_LOOKUP, 100,
                {'metadata': network.unique_key, 'eth_dst': rport.mac},
                [('set_field', pl.REG_ROUTER, router.unique_key)],
                goto=pl.L3_LOOKUP))
            # Out of the router onto this network: to each of its ports
            # (port_flows), and extra routes whose next hop is a port here:
            # to that port, longest prefix first (host routes to ports win
            # over them).
            subnet = state.get('subnet', rport.subnet_id)
            if subnet is None or not router.routes:
                continue
            by_ip = {ip: port for port in state.ports(network.id)
                     if port.macs for ip in port.ips}
            for route in router.routes:
                nexthop = by_ip.get(route['nexthop'])
                destination = ipaddress.ip_network(route['destination'])
                if nexthop is None or \
                        destination.version != subnet.network.version or \
                        ipaddress.ip_address(route['nexthop']) not in \
                        subnet.network:
                    continue
                out.append(self._to_port(
                    router, rport, network, nexthop, destination.version,
                    (str(destination.network_address),
                     str(destination.netmask)),
                    EXTRA_ROUTE + destination.prefixlen))
        return out

    def port_flows(self, state, port):
        """Host routes to the port from each router of its network."""
        if not port.macs:
            return []
        network = state.network(port.network_id)
        out = []
        for rport, router in state.enabled_interfaces(port.network_id):
            subnet = state.get('subnet', rport.subnet_id)
            if subnet is None:
                continue
            for ip in port.ips:
                if ipaddress.ip_address(ip) in subnet.network:
                    out.append(self._to_port(router, rport, network, port,
                                             subnet.network.version, ip,
                                             HOST_ROUTE))
        return out

    def _to_port(self, router, rport, network, port, version, destination,
                 priority):
        """Route packets for destination out of rport to port."""
        field = 'ipv4_dst' if version == 4 else 'ipv6_dst'
        return self.flow(
            pl.L3_LOOKUP, priority,
            {pl.REG_ROUTER: router.unique_key,
             'eth_type': pl.ETH_IP if version == 4 else pl.ETH_IPV6,
             field: destination},
            # TTL first: an expired packet goes to the controller as it
            # arrived (see router_icmp).
            [('dec_ttl',),
             ('set_field', 'eth_src', rport.mac),
             ('set_field', 'eth_dst', port.macs[0]),
             ('set_field', pl.REG_DST, port.unique_key),
             ('write_metadata', network.unique_key)],
            goto=pl.EGRESS)


APP = L3App
