"""Table 30: DHCP for ports on DHCP-enabled IPv4 subnets is answered by the
controller itself (packet-in), from the NB model: the port's address, the
gateway, DNS servers, MTU and host routes. Nothing else answers DHCP: port
security drops DHCP server traffic from VMs."""
import ipaddress
import logging
import struct

from dragonflow.controller import apps
from dragonflow.controller import packets
from dragonflow.controller import pipeline as pl

LOG = logging.getLogger(__name__)
SERVER_MAC = '02:00:00:00:df:01'   # virtual DHCP server, locally administered
LEASE_SECONDS = 86400
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)


def dhcp_subnet(state, port):
    """The port's DHCP-enabled IPv4 subnet and its address there."""
    for ip in port.ips:
        addr = ipaddress.ip_address(ip)
        if addr.version != 4:
            continue
        for subnet in state.subnets(port.network_id):
            if subnet.enable_dhcp and addr in subnet.network:
                return subnet, ip
    return None, None


def classless_routes(routes):
    """RFC 3442 option 121 payload."""
    out = b''
    for destination, nexthop in routes:
        net = ipaddress.ip_network(destination)
        significant = (net.prefixlen + 7) // 8
        out += bytes([net.prefixlen]) + net.network_address.packed[:significant]
        out += ipaddress.ip_address(nexthop).packed
    return out


def reply_options(state, port, subnet, ip, msg_type):
    """(tag, bytes) options of an OFFER/ACK for the port."""
    network = state.network(port.network_id)
    net = subnet.network
    server = subnet.gateway_ip or str(next(net.hosts()))
    opts = [(53, bytes([msg_type])), (54, ipaddress.ip_address(server).packed),
            (51, struct.pack('!I', LEASE_SECONDS)),
            (1, net.netmask.packed)]
    if subnet.gateway_ip:
        opts.append((3, ipaddress.ip_address(subnet.gateway_ip).packed))
    dns = [d for d in subnet.dns_nameservers
           if ipaddress.ip_address(d).version == 4]
    if dns:
        opts.append((6, b''.join(ipaddress.ip_address(d).packed for d in dns)))
    if network is not None and network.mtu:
        opts.append((26, struct.pack('!H', network.mtu)))
    routes = [(r['destination'], r['nexthop']) for r in subnet.host_routes]
    if routes:
        if subnet.gateway_ip:
            routes.append(('0.0.0.0/0', subnet.gateway_ip))
        opts.append((121, classless_routes(routes)))
    return server, opts


class DhcpApp(apps.App):
    name = 'dhcp'
    cookie = 6
    packet_ins = {pl.DHCP: 'dhcp_request'}

    def global_flows(self, state):
        return [self.flow(pl.DHCP, 0, goto=pl.LB_VIP)]

    def network_flows(self, state, network):
        if not any(s.enable_dhcp and s.network.version == 4
                   for s in state.subnets(network.id)):
            return []
        return [self.flow(pl.DHCP, 100,
                          {'metadata': network.unique_key,
                           'eth_type': pl.ETH_IP, 'ip_proto': 17,
                           'udp_src': 68, 'udp_dst': 67},
                          [('controller',)])]

    def dhcp_request(self, state, msg, send_packet):
        from os_ken.lib.packet import dhcp, packet
        pkt = packet.Packet(msg.data)
        request = pkt.get_protocol(dhcp.dhcp)
        port = state.port_from_packet_in(msg)
        if request is None or port is None:
            return
        subnet, ip = dhcp_subnet(state, port)
        if subnet is None:
            return
        msg_type = self._msg_type(request)
        if msg_type == DISCOVER:
            reply = OFFER
        elif msg_type == REQUEST:
            wanted = self._requested_ip(request) or request.ciaddr
            reply = ACK if wanted in (None, '0.0.0.0', ip) else NAK
        else:
            return
        state.send_to(port, self._build(state, port, subnet, ip, request,
                                        reply), send_packet)
        LOG.info('DHCP %s for port %s: %s', 'ACK' if reply == ACK else
                 'OFFER' if reply == OFFER else 'NAK', port.id, ip)

    @staticmethod
    def _msg_type(request):
        for opt in request.options.option_list if request.options else ():
            if opt.tag == 53:
                return opt.value[0]
        return None

    @staticmethod
    def _requested_ip(request):
        for opt in request.options.option_list if request.options else ():
            if opt.tag == 50 and len(opt.value) == 4:
                return str(ipaddress.ip_address(opt.value))
        return None

    def _build(self, state, port, subnet, ip, request, reply):
        from os_ken.lib.packet import dhcp, udp
        server, opts = reply_options(state, port, subnet, ip, reply)
        options = dhcp.options(option_list=[
            dhcp.option(tag=tag, value=value) for tag, value in opts])
        answer = dhcp.dhcp(op=dhcp.DHCP_BOOT_REPLY, chaddr=request.chaddr,
                           xid=request.xid, flags=request.flags,
                           yiaddr=ip if reply != NAK else '0.0.0.0',
                           siaddr=server, options=options)
        return packets.ipv4_frame(SERVER_MAC, request.chaddr, server,
                                  '255.255.255.255', 17,
                                  udp.udp(src_port=67, dst_port=68), answer)


APP = DhcpApp
