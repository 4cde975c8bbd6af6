"""Table 0: packets from local ports get their source port key (reg6) and
network key (metadata) and go to port security; anything unknown drops.
A port's own frames are the untagged ones; a trunk subport's arrive on
its parent's interface with its VLAN tag, which is removed here."""
from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl


class ClassifierApp(apps.App):
    name = 'classifier'
    cookie = 1

    def global_flows(self, state):
        return [self.flow(pl.CLASSIFIER, 0)]

    def port_flows(self, state, port):
        wire = state.wire(port.id)
        network = state.network(port.network_id)
        if wire is None or network is None:
            return []
        ofport, vlan = wire
        untag = [] if vlan is None else [('pop_vlan',)]
        return [self.flow(
            pl.CLASSIFIER, 100, {
                'in_port': ofport,
                'vlan_vid': 0 if vlan is None else pl.VLAN_PRESENT | vlan},
            untag + [('set_field', pl.REG_SRC, port.unique_key),
                     ('write_metadata', network.unique_key)],
            goto=pl.PORT_SECURITY)]


APP = ClassifierApp
