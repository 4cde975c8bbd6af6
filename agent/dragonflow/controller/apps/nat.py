"""Floating IPs (DNAT + SNAT to the FIP) and distributed SNAT (tables 50,
51, 70, 71), on the chassis where the port lives: no network node.

A router whose external gateway is on an external provider network sends
what it cannot route inside (table 60, lowest priority) to table 70. Each
local port behind it leaves translated in the NAT conntrack zone: to its
floating IP if it has one, else to this chassis' external address
(``[df] external_host_ip``, in a subnet of the external network), with the
external network's gateway as next hop, out of the provider bridge
(table 80). The connection is committed with ``ct_mark`` = the port key,
so what comes back (table 50 → conntrack → 51) is routed to its port by
the mark alone; a new connection to a floating IP is DNATed to the fixed
address and marked the same way.

On the external network, this chassis answers ARP for its external
address and for the floating IPs of its ports, each with a MAC derived
from the address (``fa:16:3f`` + its last three bytes), and resolves the
gateway's MAC itself: it sends ARP requests out of the provider bridge
every few seconds until the gateway answers (replies come to the
controller), and refreshes it now and then. Traffic to any external
address goes to the gateway (the upstream router). When an address
becomes this chassis' (a floating IP associated or moved here, the agent
started), it announces it with gratuitous ARPs, so the upstream router
and the physical switches forget where it was.
"""
import ipaddress
import logging
import time

from dragonflow.controller import apps
from dragonflow.controller import arp
from dragonflow.controller import pipeline as pl
from dragonflow.controller.apps import arp_responder
from dragonflow.controller.apps import lb as lb_app
from dragonflow.controller.apps import provider
from dragonflow.model import loadbalancer as lbm

LOG = logging.getLogger(__name__)
REFRESH = 60.0              # seconds between re-resolving a known gateway
RETRY = 1.0                 # at most one ARP request per gateway this often


def nat_mac(ip):
    """The MAC this chassis answers with for an external address."""
    b = ipaddress.ip_address(ip).packed
    return 'fa:16:3f:%02x:%02x:%02x' % (b[1], b[2], b[3])


def external_subnet(state, net_id, ip):
    """The subnet of network net_id containing ip (v4), or None."""
    if not ip:
        return None
    for subnet in state.subnets(net_id):
        if subnet.network.version == 4 and subnet.contains(ip):
            return subnet
    return None


def chassis_external_ip(state, net_id):
    chassis = state.chassis(state.chassis_id)
    ip = chassis.external_host_ip if chassis is not None else None
    return ip if external_subnet(state, net_id, ip) is not None else None


def gateway_ip(state, net_id):
    for subnet in state.subnets(net_id):
        if subnet.network.version == 4 and subnet.gateway_ip:
            return subnet.gateway_ip
    return None


def arp_reply(flow, network, ip, mac):
    """An ARP responder flow for ip on a provider network (answered out
    of the port it came in, tagged again on VLAN networks)."""
    return flow(
        pl.INGRESS_NAT, 100,
        {'metadata': network.unique_key, 'eth_type': pl.ETH_ARP,
         'arp_op': 1, 'arp_tpa': ip},
        arp_responder.reply_actions(ip, mac) +
        provider.uplink_actions(network, ('in_port',)))


class NatApp(apps.App):
    name = 'nat'
    cookie = 10
    packet_ins = {pl.INGRESS_NAT: 'gateway_arp_reply'}

    def __init__(self, controller=None):
        super().__init__(controller)
        self.asked = {}          # (network id, gateway ip) -> monotonic time
        self.announcer = arp.Announcer()

    def global_flows(self, state):
        return [
            self.flow(pl.INGRESS_NAT, 0, goto=pl.INGRESS_TUNNEL),
            self.flow(pl.INGRESS_NAT_ROUTE, 0),
            self.flow(pl.EGRESS_NAT, 0),
            self.flow(pl.EGRESS_NAT, 10, {'eth_type': pl.ETH_IP},
                      [('ct', pl.NAT_ZONE, pl.EGRESS_NAT_OUT, False,
                        'restore')]),
            self.flow(pl.EGRESS_NAT_OUT, 0),
        ]

    def network_flows(self, state, network):
        if network.external:
            return self._external_flows(state, network)
        return self._tenant_flows(state, network)

    # --- the external network side ---------------------------------------
    def _external_flows(self, state, network):
        if state.provider_ofports.get(network.physical_network) is None:
            return []
        own = chassis_external_ip(state, network.id)
        if own is None:
            return []
        # Gateway ARP replies come to the controller.
        return [self.flow(pl.INGRESS_NAT, 100, {
            'metadata': network.unique_key, 'eth_type': pl.ETH_ARP,
            'arp_op': 2, 'arp_tpa': own}, [('controller',)])] + \
            self._address_flows(state, network, own)

    def _address_flows(self, state, external, ip):
        """Answer ARP for one of our external addresses, and send what
        comes to it through the NAT zone."""
        out = []
        ofport = state.provider_ofports.get(external.physical_network)
        if self.l2_normal and ofport is not None:
            # NORMAL switches the uplink: claim just our address's frames.
            for match in ({'eth_type': pl.ETH_ARP, 'arp_tpa': ip},
                          {'eth_dst': nat_mac(ip)}):
                out.append(self.flow(
                    pl.CLASSIFIER, 100,
                    *provider.arrival(external, ofport, **match),
                    goto=pl.INGRESS_NAT))
        return out + [
            arp_reply(self.flow, external, ip, nat_mac(ip)),
            self.flow(pl.INGRESS_NAT, 90,
                      {'metadata': external.unique_key,
                       'eth_type': pl.ETH_IP, 'ipv4_dst': ip},
                      [('ct', pl.NAT_ZONE, pl.INGRESS_NAT_ROUTE, False,
                        'restore')]),
        ]

    # --- a tenant network behind a router with a gateway ----------------
    @staticmethod
    def _gateways(state, net_id):
        """(router port, router, external network) of each enabled
        interface on net_id whose router has an external gateway."""
        out = []
        for rport, router in state.enabled_interfaces(net_id):
            external = state.network(state.gateway_network(router))
            if external is not None and external.external:
                out.append((rport, router, external))
        return out

    def _tenant_flows(self, state, network):
        # What the router cannot route inside goes to NAT (above the
        # network-unreachable flow of router_icmp).
        return [self.flow(pl.L3_LOOKUP, 2, {
            pl.REG_ROUTER: router.unique_key,
            'metadata': network.unique_key, 'eth_type': pl.ETH_IP},
            goto=pl.EGRESS_NAT)
            for _, router, _ in self._gateways(state, network.id)]

    def port_flows(self, state, port):
        """A local port's way out (SNAT or its floating IP) and back; a
        load balancer VIP's floating IP on the chassis serving it."""
        network = state.network(port.network_id)
        if network is None or network.external:
            return []
        if not state.is_local(port):
            lb = lb_app.vip_load_balancer(state, port)
            if lb is None or not lb_app.serves_fip(state, lb):
                return []
        out = []
        for rport, _, external in self._gateways(state, network.id):
            out += self._port_flows(state, network, rport, external, port)
        return out

    def _port_flows(self, state, network, rport, external, port):
        fip = state.floating_ip_of(port.id)
        if fip is not None and fip.floating_network_id != external.id:
            fip = None
        source = fip.floating_ip_address if fip else \
            chassis_external_ip(state, external.id)
        gateway = gateway_ip(state, external.id)
        gateway_mac = state.neighbours.get((external.id, gateway))
        if source is None or not port.macs:
            return []
        key = port.unique_key
        routed = [('dec_ttl',),
                  ('set_field', 'eth_src', rport.mac),
                  ('set_field', 'eth_dst', port.macs[0]),
                  ('set_field', pl.REG_DST, key)]
        vip = port.device_owner == lbm.VIP_OWNER
        match = {'ct_mark': key, 'ct_state': pl.CT_STATE_VALID,
                 'eth_type': pl.ETH_IP}
        # Back from outside (reply, or a new connection to the FIP just
        # committed): route to the port; a VIP's connections from outside
        # go back to the load balancer's table 40 (marked in reg0: its
        # members see them from the VIP).
        out = [self.flow(
            pl.INGRESS_NAT_ROUTE, 100, match, routed + [
                ('set_field', 'metadata', network.unique_key),
                ('set_field', pl.REG_FROM_FIP, 1),
                ('resubmit', pl.LB_VIP)]) if vip else self.flow(
            pl.INGRESS_NAT_ROUTE, 100, match, routed + [
                ('write_metadata', network.unique_key)], goto=pl.EGRESS)]
        if fip is not None:
            out += self._address_flows(state, external,
                                       fip.floating_ip_address)
            out.append(self.flow(
                pl.INGRESS_NAT_ROUTE, 50,
                {'ct_state': pl.CT_STATE_NEW, 'eth_type': pl.ETH_IP,
                 'ipv4_dst': fip.floating_ip_address},
                [('ct', pl.NAT_ZONE, pl.INGRESS_NAT_ROUTE, True,
                  ('dst', fip.fixed_ip_address), key)]))
        if gateway_mac is None:
            return out          # no way out until the gateway answers ARP
        match = {pl.REG_SRC: key, 'eth_type': pl.ETH_IP}
        if not vip:         # a VIP opens no connection of its own
            out.append(self.flow(pl.EGRESS_NAT_OUT, 50,
                                 dict(match, ct_state=pl.CT_STATE_NEW),
                                 [('ct', pl.NAT_ZONE, pl.EGRESS_NAT_OUT,
                                   True, ('src', source), key)]))
        out += [
            self.flow(pl.EGRESS_NAT_OUT, 100,
                      dict(match, ct_mark=key, ct_state=pl.CT_STATE_VALID),
                      [('dec_ttl',),
                       ('set_field', 'eth_src', nat_mac(source)),
                       ('set_field', 'eth_dst', gateway_mac),
                       ('write_metadata', external.unique_key)],
                      goto=pl.EGRESS_PROVIDER),
        ]
        return out

    # --- resolving the gateway -------------------------------------------
    def tick(self, state, send_packet):
        self._resolve_gateways(state, send_packet)
        self._announce(state, send_packet)

    def _announce(self, state, send_packet):
        current = set()
        for net_id in self.controller.programmed:
            own = chassis_external_ip(state, net_id)
            if own:
                current.add((net_id, own))
        for fip in state.objects['floating_ip'].values():
            if fip.port_id in state.ofports and fip.fixed_ip_address and \
                    fip.floating_network_id in self.controller.programmed:
                current.add((fip.floating_network_id,
                             fip.floating_ip_address))
        for net_id, ip in self.announcer.due(current):
            network = state.network(net_id)
            ofport = state.provider_ofports.get(network.physical_network)
            if ofport is not None:
                send_packet(ofport, _arp_request(network, ip, ip))

    def _resolve_gateways(self, state, send_packet):
        for net_id in self.controller.programmed:
            network = state.network(net_id)
            if network is None or not network.external:
                continue
            ofport = state.provider_ofports.get(network.physical_network)
            own = chassis_external_ip(state, net_id)
            gateway = gateway_ip(state, net_id)
            if ofport is None or own is None or gateway is None:
                continue
            key = (net_id, gateway)
            since = time.monotonic() - self.asked.get(key, -REFRESH)
            if since < (REFRESH if key in state.neighbours else RETRY):
                continue
            self.asked[key] = time.monotonic()
            send_packet(ofport, _arp_request(network, own, gateway))

    def gateway_arp_reply(self, state, msg, send_packet):
        """The external gateway answered our ARP request."""
        from os_ken.lib.packet import arp as arp_header, packet
        reply = packet.Packet(msg.data).get_protocol(arp_header.arp)
        if reply is None or reply.opcode != arp_header.ARP_REPLY:
            return
        metadata = msg.match.get('metadata')
        for net_id in self.controller.programmed:
            network = state.network(net_id)
            if network is not None and network.unique_key == metadata:
                self.controller.post('neighbour',
                                     (net_id, reply.src_ip, reply.src_mac))


def _arp_request(network, own_ip, target_ip):
    vlan = network.segmentation_id if network.network_type == 'vlan' \
        else None
    return arp.arp_request(nat_mac(own_ip), own_ip, target_ip, vlan)


APP = NatApp
