"""The L3 flavour's stand-in for the L2 pipeline (tables 0 and 75): L2
switching is the bridge's NORMAL action (or another L2 agent's), the
agent only routes.

VM ports are plugged by someone else, typically as access ports of their
VLAN provider network (``tag=`` on the port). From a local port, a packet
to one of its network's router MACs is classified (source port, network)
and routed (table 55 → 60); ARP requests for the router's addresses are
answered; anything else goes to NORMAL. A routed packet for a local port
is output to it directly (table 75); for a port elsewhere the provider
app sends it out tagged. Table 0's default is NORMAL, so whatever no app
steers (the uplink's traffic included) is switched as if the agent were
not there.
"""
from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl
from dragonflow.controller.apps import arp_responder


class L2NormalApp(apps.App):
    name = 'l2_normal'
    cookie = 12

    def global_flows(self, state):
        return [self.flow(pl.CLASSIFIER, 0, actions=[('normal',)]),
                self.flow(pl.EGRESS, 0)]

    def port_flows(self, state, port):
        wire = state.wire(port.id)
        network = state.network(port.network_id)
        if wire is None or network is None or wire[1] is not None:
            return []           # trunk subports need the full flavour
        ofport = wire[0]
        out = []
        for rport in state.router_ports(network.id):
            if state.get('logical_router', rport.router_id) is None:
                continue
            out.append(self.flow(
                pl.CLASSIFIER, 100, {'in_port': ofport,
                                     'eth_dst': rport.mac},
                [('set_field', pl.REG_SRC, port.unique_key),
                 ('write_metadata', network.unique_key)],
                goto=pl.L2_LOOKUP))
            if not arp_responder.is_v4(rport.ip):
                continue        # ARP is IPv4's (an IPv6 interface's
                # address in arp_tpa cannot even be encoded)
            out.append(self.flow(
                pl.CLASSIFIER, 100, {
                    'in_port': ofport, 'eth_type': pl.ETH_ARP,
                    'arp_op': 1, 'arp_tpa': rport.ip},
                arp_responder.reply_actions(rport.ip, rport.mac) +
                [('in_port',)]))
        out.append(self.flow(pl.EGRESS, 100, {pl.REG_DST: port.unique_key},
                             [('output', ofport)]))
        return out


APP = L2NormalApp
