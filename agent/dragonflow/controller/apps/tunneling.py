"""Tunnels between chassis (Geneve or VXLAN, per network): flow-based
tunnel ports carry the network's segmentation id in tun_id. Outgoing
unicast to a remote port goes straight to its chassis; incoming traffic is
classified by tunnel and VNI and delivered to the local port owning the
destination MAC (table 100), never back into a tunnel."""
from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl


class TunnelingApp(apps.App):
    name = 'tunneling'
    cookie = 5
    tables = (pl.INGRESS_TUNNEL,)

    def global_flows(self, state):
        return [self.flow(pl.INGRESS_TUNNEL, 0)]

    def network_flows(self, state, network):
        ofport = state.tunnel_ofports.get(network.network_type)
        if ofport is None or network.segmentation_id is None:
            return []
        out = [self.flow(pl.CLASSIFIER, 100,
                         {'in_port': ofport,
                          'tunnel_id': network.segmentation_id},
                         [('write_metadata', network.unique_key)],
                         goto=pl.INGRESS_TUNNEL)]
        meta = {'metadata': network.unique_key}
        local = state.local_ports(network.id)
        for port in local:
            for mac in port.macs:
                out.append(self.flow(pl.INGRESS_TUNNEL, 100,
                                     dict(meta, eth_dst=mac),
                                     [('output', state.ofports[port.id])]))
        out.append(self.flow(pl.INGRESS_TUNNEL, 50,
                             dict(meta, eth_dst=pl.MULTICAST),
                             [('output', state.ofports[p.id]) for p in local]))
        for port in state.remote_ports(network.id):
            chassis = state.chassis(port.binding_chassis)
            out.append(self.flow(
                pl.EGRESS, 100, {pl.REG_DST: port.unique_key},
                [('set_field', 'tunnel_id', network.segmentation_id),
                 ('set_field', 'tun_ipv4_dst', chassis.ip),
                 ('output', ofport)]))
        return out


APP = TunnelingApp
