"""BGP graceful restart (RFC 4724) for df-bgp, on top of os-ken's speaker,
which lacks it: the restarting-speaker side, so that a peer that is a
graceful-restart helper (BIRD's default, "graceful restart aware") keeps
df-bgp's routes while df-bgp restarts.

- The OPEN carries the Graceful Restart capability: restart time
  ``[df_bgp] graceful_restart_time`` (default 120 s), the Restart State
  flag on the first session after df-bgp started, and IPv4/IPv6 unicast
  with the Forwarding State flag: the routes df-bgp advertises lead to
  flows in Open vSwitch, which a df-bgp restart does not touch.
- After the initial routes of a session, End-of-RIB (an empty UPDATE for
  IPv4 unicast, an empty MP_UNREACH_NLRI for IPv6): the helper then drops
  what it kept and did not get again.
- df-bgp stops without a NOTIFICATION (the process exits; the TCP
  connection just closes), which a helper treats as a restart. Deleting
  the speaker in NB still shuts it down with a Cease NOTIFICATION: its
  routes are withdrawn at once, as they should.

os-ken exposes no hook for either, so :func:`enable` wraps two of its
methods once per process (df-bgp is the only BGP speaker in it).
"""
import logging

LOG = logging.getLogger(__name__)
RESTART_STATE = 0x8      # capability flags (4 bits): we have restarted
FORWARDING_STATE = 0x80  # per-AF flags: forwarding kept across the restart
_state = {'enabled': False, 'restarted': True}


def enable(restart_time):
    """Advertise graceful restart and send End-of-RIB (idempotent; 0:
    nothing)."""
    if _state['enabled'] or not restart_time:
        return
    from os_ken.lib.packet import bgp
    from os_ken.services.protocols.bgp import peer as bgp_peer
    from os_ken.services.protocols.bgp.rtconf import neighbors

    configured = neighbors.NeighborConf.get_configured_capabilities

    def get_configured_capabilities(self):
        caps = configured(self)
        flags = RESTART_STATE if _state['restarted'] else 0
        families = [(bgp.RF_IPv4_UC.afi, bgp.RF_IPv4_UC.safi,
                     FORWARDING_STATE)]
        if self.cap_mbgp_ipv6:
            families.append((bgp.RF_IPv6_UC.afi, bgp.RF_IPv6_UC.safi,
                             FORWARDING_STATE))
        caps[bgp.BGP_CAP_GRACEFUL_RESTART] = [
            bgp.BGPOptParamCapabilityGracefulRestart(
                flags, min(int(restart_time), 4095), families)]
        return caps
    neighbors.NeighborConf.get_configured_capabilities = \
        get_configured_capabilities

    init_updates = bgp_peer.Peer._enqueue_init_updates

    def _enqueue_init_updates(self):
        init_updates(self)
        # End-of-RIB behind the initial routes (same outgoing queue).
        self.enque_outgoing_msg(bgp.BGPUpdate())
        if self.is_mbgp_cap_valid(bgp.RF_IPv6_UC):
            self.enque_end_of_rib(bgp.RF_IPv6_UC)
        _state['restarted'] = False
        LOG.info('End-of-RIB sent to %s', self.ip_address)
    bgp_peer.Peer._enqueue_init_updates = _enqueue_init_updates
    _state['enabled'] = True
