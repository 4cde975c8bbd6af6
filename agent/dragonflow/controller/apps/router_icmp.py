"""ICMP errors from distributed routers (flows in table 60, answers by
packet-in), on the chassis of the sending port like the routing itself.

- TTL expiry: routing decrements the TTL first; a packet whose TTL runs
  out is sent to the controller by the switch (invalid-TTL packet-in,
  enabled when the switch connects) and answered with ICMP time exceeded
  from the router's address on the sender's subnet: traceroute shows the
  gateway.
- Unknown destinations: an address inside one of the router's subnets
  that no port holds gets ICMP host unreachable; an address outside every
  subnet, extra route and external gateway gets network unreachable.

Packet-ins are bounded twice: Open vSwitch rate-limits what it sends to
the controller (``controller_rate_limit`` on the bridge's controller,
``[df] packet_in_rate_limit``), and this app answers at most ``RATE``
errors per second (token bucket), so a flood of expiring or unroutable
packets cannot turn into a packet-in or ICMP storm.
"""
import ipaddress
import logging
import time

from dragonflow import metrics
from dragonflow.controller import apps
from dragonflow.controller import packets
from dragonflow.controller import packet_in
from dragonflow.controller import pipeline as pl

LOG = logging.getLogger(__name__)
RATE = 20.0           # ICMP errors per second, and the burst
HOST_UNREACHABLE_PRIORITY = 25    # below extra routes (50+), host routes
NET_UNREACHABLE_PRIORITY = 1      # below the NAT default route (2)
TIME_EXCEEDED, DEST_UNREACH = 11, 3
NET_UNREACHABLE, HOST_UNREACHABLE = 0, 1


class TokenBucket:
    def __init__(self, rate, clock=time.monotonic):
        self.rate = rate
        self.clock = clock
        self.tokens = rate
        self.stamp = clock()

    def take(self):
        now = self.clock()
        self.tokens = min(self.rate,
                          self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RouterIcmpApp(apps.App):
    name = 'router_icmp'
    cookie = 11
    packet_ins = {pl.L3_LOOKUP: 'unreachable'}
    switch_packet_ins = {packet_in.OFPR_INVALID_TTL: 'time_exceeded'}

    def __init__(self, controller=None):
        super().__init__(controller)
        self.bucket = TokenBucket(RATE)
        self.suppressed = 0

    def network_flows(self, state, network):
        out = []
        for rport, router in state.enabled_interfaces(network.id):
            subnet = state.get('subnet', rport.subnet_id)
            if subnet is None or subnet.network.version != 4:
                continue
            key = {pl.REG_ROUTER: router.unique_key, 'eth_type': pl.ETH_IP}
            # Below the host routes of ports (100) and extra routes (50+).
            out.append(self.flow(
                pl.L3_LOOKUP, HOST_UNREACHABLE_PRIORITY,
                dict(key, ipv4_dst=(str(subnet.network.network_address),
                                    str(subnet.network.netmask))),
                [('controller',)]))
            # Per source network so two networks of a router do not share
            # the flow.
            out.append(self.flow(pl.L3_LOOKUP, NET_UNREACHABLE_PRIORITY,
                                 dict(key, metadata=network.unique_key),
                                 [('controller',)]))
        return out

    def unreachable(self, state, msg, send_packet):
        """A routed packet no route or port matched: ICMP host or network
        unreachable."""
        self._answer(state, msg, send_packet, None)

    def time_exceeded(self, state, msg, send_packet):
        """Routing decremented a TTL to zero (the switch's invalid-TTL
        packet-in, whichever routing flow it was)."""
        self._answer(state, msg, send_packet, (TIME_EXCEEDED, 0))

    def _answer(self, state, msg, send_packet, kind_code):
        from os_ken.lib.packet import ethernet, ipv4, packet
        pkt = packet.Packet(msg.data)
        eth = pkt.get_protocol(ethernet.ethernet)
        ip = pkt.get_protocol(ipv4.ipv4)
        port = state.port_from_packet_in(msg)
        if eth is None or ip is None or port is None:
            return
        rport = next((r for r in state.router_ports(port.network_id)
                      if r.mac == eth.dst), None)
        if rport is None:
            return
        kind, code = kind_code or (
            DEST_UNREACH, self._unreachable_code(state, rport, ip.dst))
        if ip.proto == 1 and _is_icmp_error(pkt):
            return               # never an error about an error
        if not self.bucket.take():
            self.suppressed += 1
            metrics.PACKET_INS_DROPPED.labels(self.name, 'rate_limit').inc()
            return
        state.send_to(port, _icmp_error(eth, rport, ip.src, msg.data[14:],
                                        kind, code), send_packet)
        LOG.debug('ICMP %d/%d from %s to %s', kind, code, rport.ip, ip.src)

    @staticmethod
    def _unreachable_code(state, rport, dst):
        address = ipaddress.ip_address(dst)
        for other in state.router_interfaces(rport.router_id):
            subnet = state.get('subnet', other.subnet_id)
            if subnet is not None and address in subnet.network:
                return HOST_UNREACHABLE
        return NET_UNREACHABLE


def _is_icmp_error(pkt):
    from os_ken.lib.packet import icmp
    message = pkt.get_protocol(icmp.icmp)
    return message is not None and message.type in (3, 4, 5, 11, 12)


def _icmp_error(eth, rport, sender, ip_bytes, kind, code):
    """The ICMP error a router sends back for the IP packet ip_bytes: its
    header and the first 8 bytes of its payload (RFC 792)."""
    from os_ken.lib.packet import icmp
    header_len = (ip_bytes[0] & 0x0f) * 4
    original = bytes(ip_bytes[:header_len + 8])
    body = icmp.TimeExceeded(data=original) if kind == TIME_EXCEEDED else \
        icmp.dest_unreach(data=original)
    return packets.ipv4_frame(rport.mac, eth.src, rport.ip, sender, 1,
                              icmp.icmp(type_=kind, code=code, data=body))


APP = RouterIcmpApp
