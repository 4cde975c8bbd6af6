"""Distributed routing (tables 55 and 60): every chassis routes for its own
ports. A packet sent to a router interface's MAC leaves L2 lookup for the
router (``reg5`` = router key); table 60 knows every port address on the
router's other subnets and rewrites the packet as the router would: source
MAC of the outgoing interface, destination MAC of the port, TTL
decremented, destination network and port key set. Delivery is then the
ordinary egress (local port, or one tunnel hop to the port's chassis)."""
import ipaddress

from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl


class L3App(apps.App):
    name = 'l3'
    cookie = 7
    tables = (pl.L3_LOOKUP,)

    def global_flows(self, state):
        return [self.flow(pl.L3_LOOKUP, 0)]

    def network_flows(self, state, network):
        out = []
        for rport in state.router_ports(network.id):
            router = state.get('logical_router', rport.router_id)
            if router is None or not router.enabled:
                continue
            # Into the router from this network.
            out.append(self.flow(
                pl.L2_LOOKUP, 100,
                {'metadata': network.unique_key, 'eth_dst': rport.mac},
                [('set_field', pl.REG_ROUTER, router.unique_key)],
                goto=pl.L3_LOOKUP))
            # Out of the router onto this network, to each of its ports.
            subnet = state.get('subnet', rport.subnet_id)
            if subnet is None:
                continue
            for port in state.ports(network.id):
                if not port.macs:
                    continue
                for ip in port.ips:
                    if ipaddress.ip_address(ip) not in subnet.network or \
                            subnet.network.version != 4:
                        continue
                    out.append(self.flow(
                        pl.L3_LOOKUP, 100,
                        {pl.REG_ROUTER: router.unique_key,
                         'eth_type': pl.ETH_IP, 'ipv4_dst': ip},
                        [('set_field', 'eth_src', rport.mac),
                         ('set_field', 'eth_dst', port.macs[0]),
                         ('dec_ttl',),
                         ('set_field', pl.REG_DST, port.unique_key),
                         ('write_metadata', network.unique_key)],
                        goto=pl.EGRESS))
        return out


APP = L3App
