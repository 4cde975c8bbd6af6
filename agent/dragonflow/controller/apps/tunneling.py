"""Tunnels between chassis (Geneve or VXLAN, per network): flow-based
tunnel ports carry the network's segmentation id in tun_id. Outgoing
unicast to a remote port goes straight to its chassis, over Geneve with the
destination port key in an option (see controller/geneve.py). Incoming
traffic is classified by tunnel and VNI, and over Geneve by the port key
too, which hands it to the ingress stages (security groups, then delivery)
at once; otherwise (VXLAN, flooded packets) table 100 finds the local port
owning the destination MAC. Never back into a tunnel."""
from dragonflow.controller import apps
from dragonflow.controller import geneve
from dragonflow.controller import pipeline as pl
from dragonflow.controller.apps import l2
from dragonflow.model import loadbalancer as lbm


class TunnelingApp(apps.App):
    name = 'tunneling'
    cookie = 5

    def global_flows(self, state):
        return [self.flow(pl.INGRESS_TUNNEL, 0)]

    @staticmethod
    def _tunnel(state, network):
        """The network's tunnel ofport, or None if it does not tunnel."""
        if network is None or network.segmentation_id is None:
            return None
        return state.tunnel_ofports.get(network.network_type)

    def network_flows(self, state, network):
        ofport = self._tunnel(state, network)
        if ofport is None:
            return []
        return [self.flow(pl.CLASSIFIER, 100,
                          {'in_port': ofport,
                           'tunnel_id': network.segmentation_id},
                          [('write_metadata', network.unique_key)],
                          goto=pl.INGRESS_TUNNEL)] + \
            l2.arrival_flows(self, state, network)

    def port_flows(self, state, port):
        network = state.network(port.network_id)
        ofport = self._tunnel(state, network)
        if ofport is None:
            return []
        keyed = network.network_type == 'geneve'
        if state.is_local(port) or lbm.is_vip_bound_here(state, port):
            out = l2.arrival_port_flows(self, network, port)
            if keyed:
                out.append(self.flow(
                    pl.CLASSIFIER, 110,
                    {'in_port': ofport, 'tunnel_id': network.segmentation_id,
                     geneve.FIELD: port.unique_key},
                    [('write_metadata', network.unique_key),
                     ('set_field', pl.REG_DST, port.unique_key)],
                    goto=pl.INGRESS_LB))
            return out
        if not state.is_remote(port):
            return []
        chassis = state.chassis(port.binding_chassis)
        key = [('set_field', geneve.FIELD, port.unique_key)] if keyed else []
        return [self.flow(
            pl.EGRESS, 100, {pl.REG_DST: port.unique_key},
            [('set_field', 'tunnel_id', network.segmentation_id),
             ('set_field', 'tun_ipv4_dst', chassis.ip)] + key +
            [('output', ofport)])]


APP = TunnelingApp
