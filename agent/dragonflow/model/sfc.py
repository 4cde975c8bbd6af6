"""Service function chaining (networking-sfc semantics): a port chain
sends the traffic its flow classifiers match through each port pair group
in order (one pair of each group, the load spread over the pairs), then on
to its destination."""
import ipaddress

from dragonflow.model import base
from dragonflow.model import fields as f
from dragonflow.model import security_group as sg


@base.register
class PortPair(base.Model):
    """A service function: traffic enters it on ingress_port and comes back
    from egress_port (they may be the same port)."""

    table = 'port_pair'
    cli_name = 'port-pair'
    cli_columns = ('id', 'name', 'ingress_port', 'egress_port')

    name = f.String(help='display name')
    ingress_port = f.Ref('logical_port', required=True, immutable=True,
                         help='port the service function receives on')
    egress_port = f.Ref('logical_port', required=True, immutable=True,
                        help='port the service function sends from')

    def check_in_store(self, view, old):
        ingress = view.get('logical_port', self.ingress_port)
        egress = view.get('logical_port', self.egress_port)
        if ingress and egress and ingress.network_id != egress.network_id:
            self.fail('egress_port', 'must be on the ingress port\'s network')


@base.register
class PortPairGroup(base.Model):
    """Interchangeable service functions: one hop of a chain."""

    table = 'port_pair_group'
    cli_name = 'port-pair-group'
    cli_columns = ('id', 'name', 'port_pairs')

    name = f.String(help='display name')
    port_pairs = f.List(f.Ref('port_pair'), help='port pair ids')

    def unique_keys(self):
        return [('ppg_pair', pair) for pair in self.port_pairs]


@base.register
class FlowClassifier(base.Model):
    """What a chain takes: traffic from logical_source_port matching the
    fields that are set."""

    table = 'flow_classifier'
    cli_name = 'flow-classifier'
    cli_columns = ('id', 'name', 'logical_source_port', 'protocol',
                   'destination_port_range_min', 'destination_port_range_max')

    name = f.String(help='display name')
    ethertype = f.Enum('IPv4', 'IPv6', default='IPv4', help='IP version')
    protocol = sg.Protocol(help='tcp, udp, icmp, ... or a number')
    source_port_range_min = f.Integer(min=1, max=65535, help='first source port')
    source_port_range_max = f.Integer(min=1, max=65535, help='last source port')
    destination_port_range_min = f.Integer(min=1, max=65535,
                                           help='first destination port')
    destination_port_range_max = f.Integer(min=1, max=65535,
                                           help='last destination port')
    source_ip_prefix = f.IpNetwork(strict=False, help='source prefix')
    destination_ip_prefix = f.IpNetwork(strict=False,
                                        help='destination prefix')
    logical_source_port = f.Ref('logical_port', required=True,
                                help='port the traffic comes from')
    logical_destination_port = f.Ref('logical_port',
                                     help='port the traffic goes to')

    def validate(self):
        for end in ('source', 'destination'):
            low = getattr(self, f'{end}_port_range_min')
            high = getattr(self, f'{end}_port_range_max')
            if low is None and high is None:
                continue
            if self.protocol not in sg.PORTED:
                self.fail(f'{end}_port_range_min',
                          f'protocol {self.protocol} has no ports')
            if (low is None) != (high is None):
                self.fail(f'{end}_port_range_max', 'give both ends')
            if low > high:
                self.fail(f'{end}_port_range_min',
                          f'{low} is above {end}_port_range_max {high}')
        for name in ('source_ip_prefix', 'destination_ip_prefix'):
            value = getattr(self, name)
            if value and f'IPv{ipaddress.ip_network(value).version}' != \
                    self.ethertype:
                self.fail(name, f'{value} does not match ethertype '
                          f'{self.ethertype}')

    def check_in_store(self, view, old):
        for name in ('logical_source_port', 'logical_destination_port'):
            port_id = getattr(self, name)
            port = view.get('logical_port', port_id) if port_id else None
            if port is not None and (port.topic or '') != (self.topic or ''):
                self.fail(name, f'port {port_id} belongs to another project')


@base.register
class PortChain(base.Model):
    """Port pair groups in order, and the classifiers whose traffic goes
    through them."""

    table = 'port_chain'
    cli_name = 'port-chain'
    cli_columns = ('id', 'name', 'port_pair_groups', 'flow_classifiers')

    name = f.String(help='display name')
    port_pair_groups = f.List(f.Ref('port_pair_group'), required=True,
                              help='port pair group ids, in order')
    flow_classifiers = f.List(f.Ref('flow_classifier'),
                              help='flow classifier ids')

    def validate(self):
        if len(set(self.port_pair_groups)) != len(self.port_pair_groups):
            self.fail('port_pair_groups', 'a group appears twice')

    def check_in_store(self, view, old):
        for i, group_id in enumerate(self.port_pair_groups):
            group = view.get('port_pair_group', group_id)
            if group is not None and not group.port_pairs:
                self.fail(f'port_pair_groups[{i}]',
                          f'group {group_id} has no port pairs')

    def unique_keys(self):
        return [('chain_group', g) for g in self.port_pair_groups] + \
            [('chain_classifier', c) for c in self.flow_classifiers]
