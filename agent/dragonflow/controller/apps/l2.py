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
    return tunnel_copies(state, network, state.remote_chassis(network.id))


def tunnel_copies(state, network, chassis_list):
    """Actions sending a copy of a packet of the network to each of these
    chassis (Chassis objects) over its tunnel."""
    ofport = state.tunnel_ofports.get(network.network_type)
    if ofport is None:
        return []
    actions = [('set_field', 'tunnel_id', network.segmentation_id)]
    for chassis in chassis_list:
        actions += [('set_field', 'tun_ipv4_dst', chassis.ip),
                    ('output', ofport)]
    return actions if len(actions) > 1 else []


def flood_actions(state, network):
    """A broadcast's actions: a copy to every local port of the network
    (through the ingress stages) and one to every chassis with ports."""
    return flood_copies(state, state.local_ports(network.id)) + \
        tunnel_outputs(state, network)


def arrival_flows(app, state, network):
    """Table 100 for packets arriving from outside the chassis (a tunnel
    or a provider bridge), metadata already set: broadcast → every local
    port of the network; anything else drops (never back out), unless
    :func:`arrival_port_flows` knows the destination."""
    return [app.flow(pl.INGRESS_TUNNEL, 50,
                     {'metadata': network.unique_key,
                      'eth_dst': pl.MULTICAST},
                     flood_copies(state, state.local_ports(network.id)))]


def arrival_port_flows(app, network, port):
    """Table 100 for a local port: arriving packets for its MACs →
    reg7 → ingress stages."""
    return [app.flow(pl.INGRESS_TUNNEL, 100,
                     {'metadata': network.unique_key, 'eth_dst': mac},
                     [('set_field', pl.REG_DST, port.unique_key)],
                     goto=pl.INGRESS_LB) for mac in port.macs]


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
                ('resubmit', pl.INGRESS_LB)]
    return out


def dispatch_flows(app, state, port):
    """Table 115 for a local port: out to it, or back out of the port it
    came in on (OpenFlow needs in_port for that: e.g. an ARP reply, or a
    trunk subport's packet routed to another subport of the same parent)."""
    ofport, vlan = state.wire(port.id)
    key = {pl.REG_DST: port.unique_key}
    back = [('in_port',)] if vlan is None else [
        ('push_vlan', 0x8100),
        ('set_field', 'vlan_vid', pl.VLAN_PRESENT | vlan), ('in_port',)]
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
        return [self.flow(pl.L2_LOOKUP, 50,
                          {'metadata': network.unique_key,
                           'eth_dst': pl.MULTICAST},
                          flood_actions(state, network))]

    def port_flows(self, state, port):
        local = state.is_local(port)
        network = state.network(port.network_id)
        if network is None or not (local or state.is_remote(port)):
            return []
        out = [self.flow(pl.L2_LOOKUP, 100,
                         {'metadata': network.unique_key, 'eth_dst': mac},
                         [('set_field', pl.REG_DST, port.unique_key)],
                         goto=pl.EGRESS) for mac in port.macs]
        if local:
            out.append(self.flow(pl.EGRESS, 100,
                                 {pl.REG_DST: port.unique_key},
                                 goto=pl.INGRESS_LB))
            out += dispatch_flows(self, state, port)
        return out


APP = L2App
