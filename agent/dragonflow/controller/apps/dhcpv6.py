"""DHCPv6 (flows in table 30, answers by packet-in), like DHCP for IPv4:
the controller answers from the NB model for ports on IPv6 subnets whose
``ipv6_address_mode`` asks for it.

- dhcpv6-stateful: Solicit -> Advertise (Reply at once with Rapid Commit),
  Request/Renew/Rebind/Confirm -> Reply, with the port's NB address in an
  IA_NA and the subnet's DNS servers;
- dhcpv6-stateless: Information-request -> Reply with the DNS servers (the
  address comes from SLAAC).

The server is a virtual one on every chassis: DUID-LL of a fixed MAC,
replying from that MAC's link-local address.
"""
import ipaddress
import logging
import struct

from dragonflow.controller import apps
from dragonflow.controller import packets
from dragonflow.controller import pipeline as pl
from dragonflow.controller.apps.dhcp import LEASE_SECONDS, SERVER_MAC
from dragonflow.model.logical_port import link_local

LOG = logging.getLogger(__name__)
SOLICIT, ADVERTISE, REQUEST, CONFIRM, RENEW, REBIND, REPLY = range(1, 8)
INFORMATION_REQUEST = 11
OPT_CLIENTID, OPT_SERVERID, OPT_IA_NA, OPT_IAADDR = 1, 2, 3, 5
OPT_RAPID_COMMIT, OPT_DNS = 14, 23
MODES = ('dhcpv6-stateful', 'dhcpv6-stateless')
SERVER_DUID = struct.pack('!HH', 3, 1) + bytes.fromhex(
    SERVER_MAC.replace(':', ''))


def dhcpv6_subnet(state, port):
    """(subnet, the port's address there or None) of the port's first IPv6
    subnet served by DHCPv6, or (None, None)."""
    for subnet in state.subnets(port.network_id):
        if subnet.network.version != 6 or not subnet.enable_dhcp or \
                subnet.ipv6_address_mode not in MODES:
            continue
        address = next((ip for ip in port.ips
                        if ipaddress.ip_address(ip) in subnet.network), None)
        return subnet, address
    return None, None


def _options(data):
    """{code: [raw option data]} of a DHCPv6 message body."""
    out = {}
    while len(data) >= 4:
        code, length = struct.unpack('!HH', data[:4])
        out.setdefault(code, []).append(bytes(data[4:4 + length]))
        data = data[4 + length:]
    return out


def _option(code, data):
    return struct.pack('!HH', code, len(data)) + data


def reply_options(subnet, address, client_options, msg_type):
    """The option bytes of our answer."""
    out = _option(OPT_SERVERID, SERVER_DUID)
    for client_id in client_options.get(OPT_CLIENTID, [])[:1]:
        out += _option(OPT_CLIENTID, client_id)
    if msg_type != INFORMATION_REQUEST and address is not None:
        for ia in client_options.get(OPT_IA_NA, []):
            iaid = ia[:4]
            iaaddr = _option(OPT_IAADDR, ipaddress.ip_address(
                address).packed + struct.pack('!II', LEASE_SECONDS,
                                              LEASE_SECONDS))
            out += _option(OPT_IA_NA, iaid + struct.pack(
                '!II', LEASE_SECONDS // 2, LEASE_SECONDS * 4 // 5) + iaaddr)
    servers = [ipaddress.ip_address(s) for s in subnet.dns_nameservers
               if ipaddress.ip_address(s).version == 6]
    if servers:
        out += _option(OPT_DNS, b''.join(s.packed for s in servers))
    return out


class Dhcpv6App(apps.App):
    name = 'dhcpv6'
    cookie = 16
    packet_ins = {pl.DHCP: 'dhcpv6_request'}

    def network_flows(self, state, network):
        if not any(s.network.version == 6 and s.enable_dhcp and
                   s.ipv6_address_mode in MODES
                   for s in state.subnets(network.id)):
            return []
        return [self.flow(pl.DHCP, 100,
                          {'metadata': network.unique_key,
                           'eth_type': pl.ETH_IPV6, 'ip_proto': 17,
                           'udp_src': 546, 'udp_dst': 547},
                          [('controller',)])]

    def dhcpv6_request(self, state, msg, send_packet):
        from os_ken.lib.packet import ethernet, ipv6, packet, udp
        pkt = packet.Packet(msg.data)
        datagram = pkt.get_protocol(udp.udp)
        ip6 = pkt.get_protocol(ipv6.ipv6)
        if datagram is None or ip6 is None or datagram.dst_port != 547:
            return
        # The DHCPv6 message, raw (os-ken's dhcp6 parser is not needed).
        payload = bytes(msg.data[14 + 40 + 8:]) if ip6.nxt == 17 else b''
        if len(payload) < 4:
            return
        msg_type = payload[0]
        port = state.port_from_packet_in(msg)
        if port is None:
            return
        subnet, address = dhcpv6_subnet(state, port)
        if subnet is None:
            return
        client_options = _options(payload[4:])
        stateful = subnet.ipv6_address_mode == 'dhcpv6-stateful'
        if msg_type == SOLICIT and stateful:
            answer = REPLY if OPT_RAPID_COMMIT in client_options \
                else ADVERTISE
        elif msg_type in (REQUEST, RENEW, REBIND, CONFIRM) and stateful:
            answer = REPLY
        elif msg_type == INFORMATION_REQUEST:
            answer = REPLY
        else:
            return
        body = reply_options(subnet, address, client_options, msg_type)
        if answer == REPLY and msg_type == SOLICIT:
            body += _option(OPT_RAPID_COMMIT, b'')
        eth = pkt.get_protocol(ethernet.ethernet)
        state.send_to(port, packets.ipv6_frame(
            SERVER_MAC, eth.src, link_local(SERVER_MAC), ip6.src, 17,
            udp.udp(src_port=547, dst_port=546),
            bytes([answer]) + bytes(payload[1:4]) + body), send_packet)
        LOG.info('DHCPv6 %s for port %s%s', 'ADVERTISE' if answer ==
                 ADVERTISE else 'REPLY', port.id,
                 f': {address}' if stateful else '')


APP = Dhcpv6App
