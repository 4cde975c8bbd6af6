"""Service function chaining (table 20, after the security groups): a port
chain's classified traffic visits one service function of each port pair
group in order, across chassis, then goes on to its destination.

No extra encapsulation: steering to a service function rewrites the
destination MAC to its ingress port's and lets L2 deliver it (locally, or
over the tunnel to its chassis); the function forwards the packet as a
router would (the destination IP is untouched) out of its egress port,
where the same classifier, matched on that port, steers it to the next
group, or, after the last one, lets it go to the real destination. The
chassis of the source classifies; each function's chassis steers what
comes back from it. Within a group the pair is picked by the low bits of
the source address (a stable per-source spread). Service function ports
forward traffic that is not theirs, so they need port security off.
Chains act within one network (the functions' ports on the source's
network).
"""
import ipaddress

from dragonflow.controller import apps
from dragonflow.controller import pipeline as pl
from dragonflow.controller.apps import security_groups as sg

BUCKETS = 8          # at most this many source buckets per group
PORT_FIELDS = {'tcp': 'tcp', 'udp': 'udp', 'sctp': 'sctp'}


def classifier_matches(classifier):
    """OpenFlow matches (dicts) of a flow classifier, without the port."""
    version = 4 if classifier.ethertype == 'IPv4' else 6
    prefix = 'ipv4' if version == 4 else 'ipv6'
    base = {'eth_type': pl.ETH_IP if version == 4 else pl.ETH_IPV6}
    proto = classifier.protocol
    if proto is not None:
        base['ip_proto'] = sg.PROTO_NUMBERS.get(proto) or int(proto)
    for end, field in (('source', 'src'), ('destination', 'dst')):
        value = getattr(classifier, f'{end}_ip_prefix')
        if value:
            match = sg._prefix(value)
            if match is not None:
                base[f'{prefix}_{field}'] = match
    variants = [base]
    for end, field in (('source', 'src'), ('destination', 'dst')):
        low = getattr(classifier, f'{end}_port_range_min')
        if low is None or proto not in PORT_FIELDS:
            continue
        high = getattr(classifier, f'{end}_port_range_max')
        name = f'{PORT_FIELDS[proto]}_{field}'
        variants = [dict(v, **{name: m}) for v in variants
                    for m in sg.port_masks(low, high)]
    return variants


def _buckets(pairs, version):
    """(source address match or None, pair) spreading over the pairs."""
    if len(pairs) == 1:
        return [(None, pairs[0])]
    count = 2
    while count < min(len(pairs), BUCKETS):
        count *= 2
    mask = count - 1
    out = []
    for bucket in range(count):
        if version == 4:
            match = (str(ipaddress.IPv4Address(bucket)),
                     str(ipaddress.IPv4Address(mask)))
        else:
            match = (str(ipaddress.IPv6Address(bucket)),
                     str(ipaddress.IPv6Address(mask)))
        out.append((match, pairs[bucket % len(pairs)]))
    return out


class SfcApp(apps.App):
    name = 'sfc'
    cookie = 15

    def global_flows(self, state):
        return [self.flow(pl.SFC, 0, goto=pl.PASS_THROUGH[pl.SFC])]

    def remote_port_shapes_network(self, state, port):
        # Chains steer to their port pairs' ports, wherever they are.
        return bool(state.objects['port_chain'])

    def network_flows(self, state, network):
        if not state.objects['port_chain']:
            return []       # no walk of the local ports on every change
        out = []
        local = {p.id for p in state.local_ports(network.id)}
        for chain in sorted(state.objects['port_chain'].values(),
                            key=lambda c: c.id):
            groups = [self._pairs(state, g) for g in chain.port_pair_groups]
            if not groups or not all(groups):
                continue
            for classifier_id in chain.flow_classifiers:
                classifier = state.get('flow_classifier', classifier_id)
                if classifier is None:
                    continue
                matches = classifier_matches(classifier)
                # Into the first group, where the source is.
                if classifier.logical_source_port in local:
                    source = state.get('logical_port',
                                       classifier.logical_source_port)
                    out += self._steer(state, source, matches, groups[0],
                                       classifier)
                # From a function of group i to group i + 1.
                for i, pairs in enumerate(groups[:-1]):
                    for pair in pairs:
                        if pair.egress_port in local:
                            egress = state.get('logical_port',
                                               pair.egress_port)
                            out += self._steer(state, egress, matches,
                                               groups[i + 1], classifier)
        return out

    @staticmethod
    def _pairs(state, group_id):
        group = state.get('port_pair_group', group_id)
        if group is None:
            return []
        pairs = [state.get('port_pair', p) for p in group.port_pairs]
        return [p for p in pairs if p is not None and
                state.get('logical_port', p.ingress_port) is not None]

    def _steer(self, state, from_port, matches, pairs, classifier):
        version = 4 if classifier.ethertype == 'IPv4' else 6
        field = 'ipv4_src' if version == 4 else 'ipv6_src'
        out = []
        for match in matches:
            for bucket, pair in _buckets(pairs, version):
                flow_match = dict(match, **{pl.REG_SRC: from_port.unique_key})
                if bucket is not None and field not in flow_match:
                    flow_match[field] = bucket
                target = state.get('logical_port', pair.ingress_port)
                out.append(self.flow(
                    pl.SFC, 100, flow_match,
                    [('set_field', 'eth_dst', target.macs[0])],
                    goto=pl.L2_LOOKUP))
        return out


APP = SfcApp
