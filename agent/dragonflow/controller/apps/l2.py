"""Tables 55, 75 and 115: L2 lookup by destination MAC within the network,
and delivery to local ports (75 hands them to the ingress stages, 115
outputs to the port in reg7); broadcast and multicast reach the network's ports
only (on this chassis and, over tunnels, on the chassis that have ports of
the network); unknown unicast drops. ARP requests for addresses the NB
model knows never get here: the ARP responder answers them on the chassis;
only requests for unknown addresses (a port without port security using
another address) are flooded."""
from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl


def tunnel_outputs(state, network):
    """Actions sending a copy to every other chassis with ports here."""
    ofport = state.tunnel_ofports.get(network.network_type)
    if ofport is None:
        return []
    actions = [('set_field', 'tunnel_id', network.segmentation_id)]
    for chassis in state.remote_chassis(network.id):
        actions += [('set_field', 'tun_ipv4_dst', chassis.ip),
                    ('output', ofport)]
    return actions if len(actions) > 1 else []


def arrival_flows(app, state, network):
    """Table 100 for packets arriving from outside the chassis (a tunnel
    or a provider bridge), metadata already set: the local port owning the
    destination MAC → reg7 → ingress stages; broadcast → every local port
    of the network; anything else drops (never back out)."""
    meta = {'metadata': network.unique_key}
    local = state.local_ports(network.id)
    out = []
    for port in local:
        for mac in port.macs:
            out.append(app.flow(pl.INGRESS_TUNNEL, 100,
                                dict(meta, eth_dst=mac),
                                [('set_field', pl.REG_DST, port.unique_key)],
                                goto=pl.INGRESS_CT))
    out.append(app.flow(pl.INGRESS_TUNNEL, 50,
                        dict(meta, eth_dst=pl.MULTICAST),
                        flood_copies(state, local)))
    return out


def flood_copies(state, ports):
    """Actions copying a packet to each of these local ports through the
    ingress stages, as a unicast packet to the port would go: each copy
    gets the port in reg7 and is resubmitted to the ingress conntrack
    table, so a port's security groups apply to broadcast and multicast
    too (conntrack forks each copy: the list goes on with the next port).
    Copies are marked (reg4) so that table 115 never sends one back to
    the port that sent the packet."""
    if not ports:
        return []
    out = [('set_field', pl.REG_FLOOD, 1)]
    for port in ports:
        out += [('set_field', pl.REG_DST, port.unique_key),
                ('resubmit', pl.INGRESS_CT)]
    return out


def dispatch_flows(app, state, port):
    """Table 115 for a local port: out to it, or back out of the port it
    came in on (OpenFlow needs in_port for that: e.g. an ARP reply, or a
    trunk subport's packet routed to another subport of the same parent)."""
    ofport, vlan = state.wire(port.id)
    key = {pl.REG_DST: port.unique_key}
    back = [('in_port',)] if vlan is None else [
        ('push_vlan', 0x8100), ('set_field', 'vlan_vid', pl.VLAN_PRESENT | vlan),
        ('in_port',)]
    return [app.flow(pl.INGRESS_DISPATCH, 100, key,
                     state.output_actions(port)),
            app.flow(pl.INGRESS_DISPATCH, 110, dict(key, in_port=ofport),
                     back),
            # A flooded packet's copy for its own sender: dropped.
            app.flow(pl.INGRESS_DISPATCH, 120,
                     dict(key, **{pl.REG_SRC: port.unique_key,
                                  pl.REG_FLOOD: 1}))]


class L2App(apps.App):
    name = 'l2'
    cookie = 4

    def global_flows(self, state):
        return [self.flow(pl.L2_LOOKUP, 0), self.flow(pl.EGRESS, 0),
                self.flow(pl.INGRESS_DISPATCH, 0)]

    def network_flows(self, state, network):
        meta = {'metadata': network.unique_key}
        out = []
        local = flood_copies(state, state.local_ports(network.id))
        for port in state.local_ports(network.id) + \
                state.remote_ports(network.id):
            for mac in port.macs:
                out.append(self.flow(pl.L2_LOOKUP, 100,
                                     dict(meta, eth_dst=mac),
                                     [('set_field', pl.REG_DST,
                                       port.unique_key)], goto=pl.EGRESS))
        for port in state.local_ports(network.id):
            out.append(self.flow(pl.EGRESS, 100, {pl.REG_DST: port.unique_key},
                                 goto=pl.INGRESS_CT))
            out += dispatch_flows(self, state, port)
        out.append(self.flow(pl.L2_LOOKUP, 50,
                             dict(meta, eth_dst=pl.MULTICAST),
                             local + tunnel_outputs(state, network)))
        return out


APP = L2App
