"""ARP packets the controller sends itself, and gratuitous-ARP bookkeeping
(addresses that appear on this chassis are announced a few times, so
neighbours drop what they cached for the address before)."""
ANNOUNCEMENTS = 3       # gratuitous ARPs per new address, one per tick


def arp_request(src_mac, src_ip, target_ip, vlan=None):
    """A broadcast ARP request (gratuitous when target_ip == src_ip), with
    an 802.1Q tag when vlan is given."""
    from os_ken.lib.packet import arp, ethernet, packet
    from os_ken.lib.packet import vlan as vlan_header
    pkt = packet.Packet()
    if vlan is not None:
        pkt.add_protocol(ethernet.ethernet(
            dst='ff:ff:ff:ff:ff:ff', src=src_mac, ethertype=0x8100))
        pkt.add_protocol(vlan_header.vlan(vid=vlan, ethertype=0x0806))
    else:
        pkt.add_protocol(ethernet.ethernet(
            dst='ff:ff:ff:ff:ff:ff', src=src_mac, ethertype=0x0806))
    pkt.add_protocol(arp.arp(opcode=arp.ARP_REQUEST, src_mac=src_mac,
                             src_ip=src_ip, dst_mac='00:00:00:00:00:00',
                             dst_ip=target_ip))
    pkt.serialize()
    return pkt.data


class Announcer:
    """Which addresses to announce now: each key seen for the first time
    is due on this and the next ANNOUNCEMENTS - 1 calls; keys that go away
    are forgotten (and announced again if they come back)."""

    def __init__(self, count=ANNOUNCEMENTS):
        self.count = count
        self.left = {}

    def due(self, keys):
        self.left = {key: self.left.get(key, self.count) for key in keys}
        out = sorted(key for key, left in self.left.items() if left > 0)
        for key in out:
            self.left[key] -= 1
        return out
