"""Provider networks (flat and VLAN) through bridge mappings (tables 0,
55, 75, 80 and 100 for those networks).

``[df_provider_networks] bridge_mappings = physnet1:br-ex`` wires br-int to
the operator's bridge br-ex with a patch port. A provider network's
traffic to anything not on this chassis (ports of other chassis, hosts
outside, unknown MACs) leaves through the patch of its physical network,
tagged with the segmentation id on VLAN networks (table 80); broadcast
goes to the local ports and out of the patch. Frames arriving on the
patch (with the network's VLAN tag, or untagged for a flat network) are
untagged, classified to the network, pass the NAT stage (table 50: our
external addresses) and are delivered like tunnel arrivals (table 100). Provider networks never use tunnels; the provider bridge
itself stays a plain NORMAL switch.

In the L3 flavour (``l2_normal``) NORMAL switches provider networks; this
app then only sends routed packets for ports elsewhere out of the patch,
tagged (tables 75, 80).
"""
from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl
from dragonflow.controller.apps import l2


def _vlan_match(network):
    if network.network_type == 'vlan':
        return pl.VLAN_PRESENT | network.segmentation_id
    return 0        # untagged (OFPVID_NONE)


def uplink_actions(network, output):
    """Send out to the physical network: output is an action sending to
    the patch (e.g. ('output', ofport) or ('in_port',)); VLAN networks get
    their tag pushed first."""
    if network.network_type == 'vlan':
        return [('push_vlan', 0x8100),
                ('set_field', 'vlan_vid',
                 pl.VLAN_PRESENT | network.segmentation_id),
                output]
    return [output]


def _out_actions(network, ofport):
    return uplink_actions(network, ('output', ofport))


def arrival(network, ofport, **match):
    """(match, actions) classifying frames of network arriving on its
    patch ofport (with extra match fields): untag, set the network."""
    pop = [('pop_vlan',)] if network.network_type == 'vlan' else []
    return (dict(match, in_port=ofport, vlan_vid=_vlan_match(network)),
            pop + [('write_metadata', network.unique_key)])


class ProviderApp(apps.App):
    name = 'provider'
    cookie = 9

    def global_flows(self, state):
        return [self.flow(pl.EGRESS_PROVIDER, 0)]

    def network_flows(self, state, network):
        if network.network_type not in pl.PROVIDER_TYPES:
            return []
        ofport = state.provider_ofports.get(network.physical_network)
        if ofport is None:
            return []
        meta = {'metadata': network.unique_key}
        out = [self.flow(pl.EGRESS_PROVIDER, 100, meta,
                         _out_actions(network, ofport))]
        if self.l2_normal:
            return out
        out += [
            self.flow(pl.CLASSIFIER, 100, *arrival(network, ofport),
                      goto=pl.INGRESS_NAT),
            # Unknown unicast: the destination is outside.
            self.flow(pl.L2_LOOKUP, 1, meta, goto=pl.EGRESS_PROVIDER),
            # Broadcast: local ports, then out (the tag goes on last).
            self.flow(pl.L2_LOOKUP, 60, dict(meta, eth_dst=pl.MULTICAST),
                      l2.flood_copies(state, state.local_ports(network.id)) +
                      _out_actions(network, ofport)),
        ]
        out += l2.arrival_flows(self, state, network)
        return out

    def port_flows(self, state, port):
        network = state.network(port.network_id)
        if network is None or \
                network.network_type not in pl.PROVIDER_TYPES or \
                state.provider_ofports.get(network.physical_network) is None:
            return []
        if state.is_remote(port):
            return [self.flow(pl.EGRESS, 100, {pl.REG_DST: port.unique_key},
                              goto=pl.EGRESS_PROVIDER)]
        if state.is_local(port) and not self.l2_normal:
            return l2.arrival_port_flows(self, network, port)
        return []


APP = ProviderApp
