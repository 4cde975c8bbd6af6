"""Distributed load balancing (Octavia v2 names and meanings): a load
balancer's VIP on a subnet, listeners (protocol and port), pools (members
and the algorithm choosing among them), members and health monitors.

The VIP is a logical port the NB API creates with the load balancer (in
the same transaction) and deletes with it; every chassis with a client
answers ARP for it and balances connections to it itself (see
``controller/apps/lb.py``). HTTP listeners are balanced at L4, like TCP.
"""
import math

from dragonflow.model import base
from dragonflow.model import fields as f
from dragonflow.model import keyed
from dragonflow.model import logical_port

PROTOCOLS = ('TCP', 'UDP', 'HTTP')
L4 = {'TCP': 'tcp', 'HTTP': 'tcp', 'UDP': 'udp'}
ALGORITHMS = ('ROUND_ROBIN', 'SOURCE_IP', 'SOURCE_IP_PORT')
OPERATING = ('ONLINE', 'OFFLINE', 'DEGRADED', 'ERROR', 'NO_MONITOR',
             'DRAINING')
PROVISIONING = ('ACTIVE', 'PENDING_CREATE', 'PENDING_UPDATE',
                'PENDING_DELETE', 'ERROR')
VIP_OWNER = 'Octavia'
EXPECTED_CODES = r'^[1-5][0-9][0-9]((,[1-5][0-9][0-9])*|-[1-5][0-9][0-9])$'


def _subnet(model, view, field, subnet_id):
    subnet = view.get('subnet', subnet_id)
    if subnet is None:
        model.fail(field, f'subnet {subnet_id} does not exist')
    return subnet


@base.register
class LoadBalancer(base.Model):
    """A VIP balanced over pool members on each client's own chassis.

    No load-balancer VM and no central hop."""

    table = 'loadbalancer'
    cli_name = 'loadbalancer'
    cli_columns = ('id', 'name', 'vip_address', 'vip_subnet_id',
                   'admin_state_up', 'provisioning_status',
                   'operating_status')

    name = f.String(help='display name')
    description = f.String(help='free text')
    vip_subnet_id = f.Ref('subnet', required=True, immutable=True,
                          help='subnet of the VIP')
    vip_network_id = f.Ref('logical_switch', immutable=True,
                           help='network of the VIP (derived)')
    vip_address = f.IpAddress(version=4, immutable=True,
                              help='the VIP; allocated in the subnet if unset')
    vip_port_id = f.Ref('logical_port', immutable=True,
                        help='the VIP\'s port, created with the load '
                        'balancer (derived)')
    admin_state_up = f.Boolean(default=True,
                               help='false: the VIP is not balanced')
    provisioning_status = f.Enum(*PROVISIONING, default='ACTIVE',
                                 help='Octavia provisioning status')
    operating_status = f.Enum(*OPERATING, default='ONLINE',
                              help='Octavia operating status')

    def create_plan(self, view):
        """The VIP port first, then the load balancer referring to it: one
        transaction (NbApi.create)."""
        subnet = _subnet(self, view, 'vip_subnet_id', self.vip_subnet_id)
        if subnet.network.version != 4:
            self.fail('vip_subnet_id', f'subnet {subnet.id} is IPv6; VIPs '
                      'are IPv4')
        vip = self.vip_address
        if vip is None:
            vip = logical_port.allocate_ip(view, subnet.network_id, [subnet])
            if vip is None:
                self.fail('vip_address', f'no free address in subnet '
                          f'{subnet.id}')
        else:
            self._check_vip(view, subnet, vip)
        port_id = self.vip_port_id or f.new_id()
        port = {'id': port_id, 'name': f'vip-{self.name or self.id}',
                'network_id': subnet.network_id, 'ips': [vip],
                'topic': self.topic, 'device_owner': VIP_OWNER,
                'device_id': self.id, 'port_security_enabled': False}
        data = self.to_dict()
        data.update(vip_port_id=port_id, vip_address=vip,
                    vip_network_id=subnet.network_id)
        return [('create', 'logical_port', port),
                ('create', self.table, data)]

    def _check_vip(self, view, subnet, vip):
        if not subnet.contains(vip):
            self.fail('vip_address', f'{vip} is not in subnet {subnet.id} '
                      f'({subnet.cidr})')
        if vip == subnet.gateway_ip:
            self.fail('vip_address', f'{vip} is the gateway of subnet '
                      f'{subnet.id}')
        if vip in view.index_keys('ip', subnet.network_id):
            self.fail('vip_address', f'{vip} is taken on network '
                      f'{subnet.network_id}')

    def check_in_store(self, view, old):
        subnet = _subnet(self, view, 'vip_subnet_id', self.vip_subnet_id)
        port = view.get('logical_port', self.vip_port_id) \
            if self.vip_port_id else None
        if port is None:
            self.fail('vip_port_id', 'the VIP port is created with the load '
                      'balancer (create it through the NB API)')
        if self.vip_address not in port.ips or \
                subnet.network_id != self.vip_network_id:
            self.fail('vip_address', f'{self.vip_address} is not the address '
                      f'of VIP port {port.id}')

    def owned(self):
        """Objects deleted with it: its VIP port."""
        return [('logical_port', self.vip_port_id)] if self.vip_port_id \
            else []


@base.register
class Listener(keyed.KeyedModel):
    """A protocol and port of a VIP; HTTP is balanced at L4, like TCP."""

    table = 'listener'
    cli_name = 'listener'
    cli_columns = ('id', 'name', 'loadbalancer_id', 'protocol',
                   'protocol_port', 'default_pool_id')

    name = f.String(help='display name')
    loadbalancer_id = f.Ref('loadbalancer', required=True, immutable=True,
                            help='load balancer it listens on')
    protocol = f.Enum(*PROTOCOLS, required=True, immutable=True,
                      help='TCP, UDP or HTTP (HTTP is balanced at L4)')
    protocol_port = f.Integer(min=1, max=65535, required=True,
                              immutable=True, help='port on the VIP')
    connection_limit = f.Integer(min=-1, default=-1,
                                 help='-1: unlimited (recorded, not '
                                 'enforced yet)')
    default_pool_id = f.Ref('pool', on_delete='clear',
                            help='pool its connections go to')
    admin_state_up = f.Boolean(default=True,
                               help='false: connections are not balanced')

    def check_in_store(self, view, old):
        if self.default_pool_id:
            pool = view.get('pool', self.default_pool_id)
            if pool is not None and \
                    pool.loadbalancer_id != self.loadbalancer_id:
                self.fail('default_pool_id', f'pool {pool.id} belongs to '
                          f'load balancer {pool.loadbalancer_id}')
            if pool is not None and L4[pool.protocol] != L4[self.protocol]:
                self.fail('default_pool_id', f'pool {pool.id} is '
                          f'{pool.protocol}, the listener {self.protocol}')

    def unique_keys(self):
        return list(super().unique_keys()) + [
            ('lb_listener', f'{self.loadbalancer_id}/'
             f'{L4[self.protocol]}-{self.protocol_port}')]


class SessionPersistence(base.Struct):
    type = f.Enum('SOURCE_IP', required=True,
                  help='SOURCE_IP: a client stays on its member')
    persistence_timeout = f.Integer(min=1, max=86400, default=360,
                                    help='seconds a client stays pinned')


@base.register
class Pool(base.Model):
    """Members and the algorithm choosing one for each new connection."""

    table = 'pool'
    cli_name = 'pool'
    cli_columns = ('id', 'name', 'loadbalancer_id', 'protocol',
                   'lb_algorithm')

    name = f.String(help='display name')
    loadbalancer_id = f.Ref('loadbalancer', required=True, immutable=True,
                            help='load balancer of the pool')
    protocol = f.Enum(*PROTOCOLS, required=True, immutable=True,
                      help='TCP, UDP or HTTP (HTTP is balanced at L4)')
    lb_algorithm = f.Enum(*ALGORITHMS, required=True,
                          help='ROUND_ROBIN and SOURCE_IP_PORT: a hash of '
                          'the 5-tuple; SOURCE_IP: of the client address')
    session_persistence = f.Nested(
        SessionPersistence,
        help='type=SOURCE_IP[,persistence_timeout=SECONDS]')
    admin_state_up = f.Boolean(default=True,
                               help='false: no member takes connections')


@base.register
class Member(base.Model):
    """A backend address and port in a pool."""

    table = 'member'
    cli_name = 'member'
    cli_columns = ('id', 'name', 'pool_id', 'address', 'protocol_port',
                   'weight', 'admin_state_up', 'operating_status')

    name = f.String(help='display name')
    pool_id = f.Ref('pool', required=True, immutable=True,
                    help='pool of the member')
    address = f.IpAddress(version=4, required=True, immutable=True,
                          help='backend address')
    protocol_port = f.Integer(min=1, max=65535, required=True,
                              immutable=True, help='backend port')
    subnet_id = f.Ref('subnet', immutable=True,
                      help='subnet of the address; the VIP\'s if unset')
    weight = f.Integer(min=0, max=256, default=1,
                       help='share of new connections (0: none)')
    admin_state_up = f.Boolean(default=True,
                               help='false: drained (no new connections)')
    backup = f.Boolean(default=False,
                       help='takes connections only when no other member '
                       'is up')
    monitor_address = f.IpAddress(version=4,
                                  help='address probed instead of address')
    monitor_port = f.Integer(min=1, max=65535,
                             help='port probed instead of protocol_port')
    operating_status = f.Enum(*OPERATING, default='NO_MONITOR',
                              help='written by the health monitors')

    def check_in_store(self, view, old):
        pool = view.get('pool', self.pool_id)
        lb = view.get('loadbalancer', pool.loadbalancer_id) if pool else None
        if lb is None:
            return
        if self.subnet_id is None:
            vip_subnet = view.get('subnet', lb.vip_subnet_id)
            if vip_subnet is None or not vip_subnet.contains(self.address):
                self.fail('subnet_id', f'{self.address} is not in the VIP\'s '
                          'subnet: give the member\'s subnet')
            self.subnet_id = vip_subnet.id
        subnet = _subnet(self, view, 'subnet_id', self.subnet_id)
        if not subnet.contains(self.address):
            self.fail('address', f'{self.address} is not in subnet '
                      f'{subnet.id} ({subnet.cidr})')
        if subnet.network_id != lb.vip_network_id and \
                not _routed(view, lb.vip_network_id, subnet.network_id):
            self.fail('subnet_id', f'subnet {subnet.id} is not reachable from '
                      f'the VIP\'s network {lb.vip_network_id}: no router '
                      'connects them')

    def unique_keys(self):
        return [('lb_member',
                 f'{self.pool_id}/{self.address}-{self.protocol_port}')]


def _routed(view, net_a, net_b):
    """Whether one router has interfaces on both networks."""
    routers = {p.router_id for p in view.referrers(
        'logical_switch', net_a, 'logical_router_port')}
    return any(p.router_id in routers for p in view.referrers(
        'logical_switch', net_b, 'logical_router_port'))


@base.register
class HealthMonitor(base.Model):
    """How a pool's members are probed (on each member's own chassis)."""

    table = 'healthmonitor'
    cli_name = 'healthmonitor'
    cli_columns = ('id', 'name', 'pool_id', 'type', 'delay', 'timeout',
                   'max_retries', 'max_retries_down')

    name = f.String(help='display name')
    pool_id = f.Ref('pool', required=True, immutable=True,
                    help='pool whose members it probes')
    type = f.Enum('TCP', 'HTTP', 'PING', 'UDP-CONNECT', required=True,
                  immutable=True, help='probe kind')
    delay = f.Integer(min=1, max=86400, required=True,
                      help='seconds between probes')
    timeout = f.Integer(min=1, max=86400, required=True,
                        help='seconds a probe may take')
    max_retries = f.Integer(min=1, max=10, required=True,
                            help='successes that bring a member ONLINE')
    max_retries_down = f.Integer(min=1, max=10, default=3,
                                 help='failures that take a member to ERROR')
    http_method = f.Enum('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS',
                         'PATCH', 'CONNECT', 'TRACE', default='GET',
                         help='HTTP probes: method')
    url_path = f.String(default='/', pattern=r'^/\S*$',
                        help='HTTP probes: path')
    expected_codes = f.String(default='200', pattern=EXPECTED_CODES,
                              help='HTTP probes: 200, 200,202 or 200-204')
    admin_state_up = f.Boolean(default=True, help='false: not probing')

    def validate(self):
        if self.delay < self.timeout:
            self.fail('delay', f'{self.delay} is below timeout '
                      f'{self.timeout} (a probe would outlive its period)')
        if self.type != 'HTTP' and (
                self.http_method != 'GET' or self.url_path != '/' or
                self.expected_codes != '200'):
            self.fail('type', f'{self.type} probes take no http_method, '
                      'url_path or expected_codes')

    def unique_keys(self):
        return [('lb_healthmonitor', self.pool_id)]

    def window(self):
        """Seconds from a member going down to it being marked ERROR."""
        return self.delay * self.max_retries_down + self.timeout


def is_vip_bound_here(state, port):
    """A VIP port bound to this chassis (the one serving its floating
    IP): what arrives for it from other chassis is received here, though
    no interface carries it."""
    return port.device_owner == VIP_OWNER and \
        port.binding_chassis == state.chassis_id


def slots(weights, limit=256):
    """Hash slots per member for integer weights: proportional, at least
    one per non-zero weight, at most ``limit`` in all (multipath's
    modulo-N over the slots spreads new connections by weight)."""
    live = [w for w in weights if w > 0]
    if not live:
        return [0] * len(weights)
    divisor = math.gcd(*live)
    scaled = [w // divisor for w in weights]
    total = sum(scaled)
    if total > limit:
        scaled = [max(1, round(w * limit / total)) if w else 0
                  for w in scaled]
    return scaled
