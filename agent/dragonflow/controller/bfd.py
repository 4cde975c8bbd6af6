"""Tunnel liveness between chassis with BFD (``dfctl check``).

The data tunnels are flow-based (one port per tunnel type, remote_ip=flow),
on which Open vSwitch runs no BFD. So the agent keeps, next to them, one
BFD-only Geneve port per other chassis (remote_ip = that chassis' tunnel
address, UDP ``[df] bfd_udp_port``, default 6082, so that no data traffic
lands on it) with ``bfd:enable=true``; Open vSwitch answers BFD itself,
before the flow table, so these ports need no flows. A session that is
not up means the underlay between the two chassis does not carry UDP
between their tunnel addresses (a cut link, a firewall); a firewall that
blocks only the data port (6081/4789) is not seen. Ports are named
``dfbfd<crc32 of the chassis id>`` with the chassis id in
``external_ids:df-bfd-chassis``, created and removed as chassis come and
go, from a worker thread (OVSDB calls stay off the main loop). Not in the
L3 flavour, whose bridge floods with NORMAL (a tunnel port with a fixed
remote would carry its broadcasts to that chassis).
"""
import concurrent.futures
import logging
import threading
import zlib

LOG = logging.getLogger(__name__)


def port_name(chassis_id):
    return f'dfbfd{zlib.crc32(chassis_id.encode()) & 0xffffffff:08x}'


class BfdSessions:
    def __init__(self, ovs, chassis_id, local_ip, udp_port):
        self.ovs = ovs
        self.chassis_id = chassis_id
        self.local_ip = local_ip
        self.udp_port = udp_port
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix='df-bfd')
        self._lock = threading.Lock()
        self._wanted = None
        self._queued = False

    def want(self, chassis):
        """The other chassis now ({id: tunnel ip}); applied in the
        worker, the latest wish only."""
        with self._lock:
            self._wanted = {c: ip for c, ip in chassis.items()
                            if c != self.chassis_id and ip}
            if self._queued:
                return
            self._queued = True
        self.pool.submit(self._apply)

    def _apply(self):
        with self._lock:
            wanted, self._queued = self._wanted, False
        try:
            have = self.ovs.bfd_ports()
            desired = {port_name(c): (c, ip) for c, ip in wanted.items()}
            for name, (chassis, ip, _) in have.items():
                if desired.get(name) != (chassis, ip):
                    self.ovs.del_port(name)
            for name, (chassis, ip) in sorted(desired.items()):
                if have.get(name, (None, None))[:2] != (chassis, ip):
                    self.ovs.add_bfd_port(name, chassis, self.local_ip, ip,
                                          self.udp_port)
        except Exception:
            LOG.exception('could not set up the BFD ports')

    def status(self):
        """{chassis id: {'state', 'forwarding', 'diagnostic',
        'remote_state', 'remote_ip'}} of every BFD port."""
        out = {}
        for chassis, ip, status in self.ovs.bfd_ports().values():
            out[chassis] = {k: status.get(k) for k in (
                'state', 'forwarding', 'diagnostic', 'remote_state')}
            out[chassis]['remote_ip'] = ip
        return out
