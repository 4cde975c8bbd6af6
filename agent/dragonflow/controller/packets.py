"""Packets the agent sends itself (answers to packet-ins, announcements),
built with os-ken's packet library in one place."""
from dragonflow.controller import pipeline as pl


def frame(eth_src, eth_dst, *layers):
    """Serialised Ethernet frame of layers (os-ken protocol objects or
    bytes); the ethertype follows the first layer (IPv6 or IPv4)."""
    from os_ken.lib.packet import ethernet, ipv6, packet
    ethertype = pl.ETH_IPV6 if isinstance(layers[0], ipv6.ipv6) \
        else pl.ETH_IP
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=eth_dst, src=eth_src,
                                       ethertype=ethertype))
    for layer in layers:
        pkt.add_protocol(layer)
    pkt.serialize()
    return pkt.data


def ipv6_frame(eth_src, eth_dst, ip_src, ip_dst, nxt, *payload):
    """An IPv6 packet with hop limit 255 (what neighbour discovery
    requires of NAs and RAs, and harmless for DHCPv6)."""
    from os_ken.lib.packet import ipv6
    return frame(eth_src, eth_dst, ipv6.ipv6(
        src=ip_src, dst=ip_dst, nxt=nxt, hop_limit=255), *payload)


def ipv4_frame(eth_src, eth_dst, ip_src, ip_dst, proto, *payload):
    from os_ken.lib.packet import ipv4
    return frame(eth_src, eth_dst, ipv4.ipv4(
        src=ip_src, dst=ip_dst, proto=proto, ttl=64), *payload)


def icmpv6_from_port(state, msg, kind):
    """(packet, ICMPv6 message, local port) of a packet-in that is an
    ICMPv6 message of type kind from a local port; None for anything
    else."""
    from os_ken.lib.packet import icmpv6, packet
    pkt = packet.Packet(msg.data)
    message = pkt.get_protocol(icmpv6.icmpv6)
    port = state.port_from_packet_in(msg)
    if message is None or message.type_ != kind or port is None:
        return None
    return pkt, message, port
