"""df-bgp: the BGP service.

Follows the NB change stream (no polling) for its BGP speaker object, the
peers it names, and the routers, subnets, floating IPs, ports and chassis
that decide what is advertised; keeps os-ken's BGPSpeaker peering with
every peer and advertising exactly the desired routes (added and withdrawn
as NB objects come and go). It never exits on a peer that is down or
refuses: the speaker keeps retrying, and the session state is reported in
ZooKeeper (``<root>/bgp/<speaker id>``, read by ``dfctl bgp status``) and
in the service health like every daemon.

Threads: os-ken's BGP speaker does its socket I/O with the plain socket
module, so its sockets must be green (unpatched, a session's blocking read
stalls the whole hub until the next keepalive: withdrawals took 2-5 s).
Only os-ken's BGP modules get eventlet's green socket module; nothing is
monkey-patched process-wide (patching sockets under kazoo's real threads
made its connection time out now and then), so kazoo keeps real threads
and sockets and hands changes to the hub through an Inbox.
"""
import json
import logging
import sys
import time

from dragonflow import lean  # noqa: F401 (first: eventlet, leanly)

from oslo_config import cfg

from dragonflow import daemon
from dragonflow import logs
from dragonflow import metrics
from dragonflow.bgp import graceful
from dragonflow.bgp import routes
from dragonflow.inbox import Inbox

LOG = logging.getLogger('dragonflow.bgp.service')   # not '__main__'
BINARY = 'df-bgp'
FOLLOWED = ['bgp_speaker', 'bgp_peer', 'logical_router',
            'logical_router_port', 'subnet', 'floating_ip', 'logical_port',
            'chassis']

bgp_opts = [
    cfg.StrOpt('speaker_id', help='the BgpSpeaker object this service '
               'runs; the only one in NB when unset'),
    cfg.StrOpt('router_id', help='BGP router id; the speaker object\'s, '
               'else the first local address of the peers\' subnet'),
    cfg.StrOpt('listen_address', default='0.0.0.0',
               help='address the speaker accepts sessions on'),
    cfg.PortOpt('listen_port', default=179,
                help='BGP port to listen on; 0 to only connect out'),
    cfg.FloatOpt('status_interval', default=5.0, min=0.5,
                 help='seconds between session state reports'),
    cfg.IntOpt('graceful_restart_time', default=120, min=0, max=4095,
               help='seconds a graceful-restart helper peer keeps df-bgp\'s '
                    'routes while it restarts (RFC 4724); 0: no graceful '
                    'restart'),
    cfg.PortOpt('metrics_port', default=9111,
                help='df-bgp\'s Prometheus /metrics port (on [df] '
                     'metrics_address); 0: no metrics'),
]


def register_opts(conf):
    conf.register_opts(bgp_opts, group='df_bgp')


class BgpService:
    def __init__(self, conf, nb):
        self.conf = conf
        self.nb = nb
        self.inbox = Inbox()
        self.objects = {t: {} for t in FOLLOWED}
        self.speaker = None          # os-ken BGPSpeaker
        self.speaker_obj = None      # the NB BgpSpeaker it runs
        self.peers = {}              # peer ip -> remote AS, as configured
        self.advertised = {}         # prefix -> next hop
        self.sessions = {}           # peer ip -> Established | Down
        self.status_path = None

    # --- inputs ----------------------------------------------------------
    def on_nb_change(self, change):
        self.inbox.post('nb', change)

    def run(self):
        from os_ken.lib import hub
        hub.spawn(self._report_loop)
        while True:
            batch = [self.inbox.get()] + self.inbox.drain()
            for _, change in batch:
                table = self.objects[change.table]
                if change.action == 'delete':
                    table.pop(change.id, None)
                else:
                    table[change.id] = change.new
            try:
                self.sync()
            except Exception:
                LOG.exception('BGP sync failed')

    # --- reconciling -----------------------------------------------------
    def _choose_speaker(self):
        speakers = self.objects['bgp_speaker']
        wanted = self.conf.df_bgp.speaker_id
        if wanted:
            return speakers.get(wanted)
        if len(speakers) > 1:
            LOG.error('%d BGP speakers in NB; set [df_bgp] speaker_id',
                      len(speakers))
            return None
        return next(iter(speakers.values()), None)

    def sync(self):
        speaker = self._choose_speaker()
        if speaker is None:
            self._stop_speaker()
            return
        if self.speaker_obj is None or \
                speaker.local_as != self.speaker_obj.local_as or \
                speaker.router_id != self.speaker_obj.router_id:
            self._stop_speaker()
            self._start_speaker(speaker)
        self.speaker_obj = speaker
        # Routes first: a new session's first updates then hold them all,
        # and its End-of-RIB (graceful restart) comes after them.
        self._sync_routes(routes.desired_routes(self.objects, speaker))
        self._sync_peers(speaker)

    def _start_speaker(self, speaker):
        from os_ken.services.protocols.bgp.bgpspeaker import BGPSpeaker
        graceful.enable(self.conf.df_bgp.graceful_restart_time)
        router_id = speaker.router_id or self.conf.df_bgp.router_id or \
            self.conf.df.local_ip or '127.0.0.1'
        port = self.conf.df_bgp.listen_port
        self.speaker = BGPSpeaker(
            as_number=speaker.local_as, router_id=router_id,
            bgp_server_hosts=(self.conf.df_bgp.listen_address,),
            bgp_server_port=port,
            peer_up_handler=self._peer_up, peer_down_handler=self._peer_down)
        self.status_path = f'{self.nb.store.layout.bgp}/{speaker.id}'
        LOG.info('BGP speaker %s up: AS %d, router id %s, port %d',
                 speaker.id, speaker.local_as, router_id, port)

    def _stop_speaker(self):
        if self.speaker is not None:
            self.speaker.shutdown()
            LOG.info('BGP speaker stopped')
        self.speaker = None
        self.speaker_obj = None
        self.peers = {}
        self.advertised = {}
        self.sessions = {}

    def _sync_peers(self, speaker):
        wanted = {}
        for peer_id in speaker.peers:
            peer = self.objects['bgp_peer'].get(peer_id)
            if peer is not None:
                wanted[peer.peer_ip] = (peer.remote_as, peer.password)
        for ip in set(self.peers) - set(wanted):
            self.speaker.neighbor_del(ip)
            self.sessions.pop(ip, None)
            LOG.info('BGP peer %s removed', ip, extra=logs.fields(peer=ip))
        connect = 'active' if self.conf.df_bgp.listen_port == 0 else 'both'
        for ip, (remote_as, password) in wanted.items():
            if self.peers.get(ip) == (remote_as, password):
                continue
            if ip in self.peers:
                self.speaker.neighbor_del(ip)
            self.speaker.neighbor_add(ip, remote_as, password=password,
                                      connect_mode=connect)
            LOG.info('BGP peer %s AS %d added', ip, remote_as,
                     extra=logs.fields(peer=ip))
        self.peers = wanted

    def _sync_routes(self, desired):
        for prefix in sorted(set(self.advertised) - set(desired)):
            self.speaker.prefix_del(prefix)
            LOG.info('withdrew %s', prefix, extra=logs.fields(prefix=prefix))
        for prefix, next_hop in sorted(desired.items()):
            if self.advertised.get(prefix) == next_hop:
                continue
            if prefix in self.advertised:
                self.speaker.prefix_del(prefix)
            self.speaker.prefix_add(prefix, next_hop=next_hop)
            LOG.info('advertised %s via %s', prefix, next_hop,
                     extra=logs.fields(prefix=prefix))
        self.advertised = dict(desired)
        self._write_status()

    # --- status ----------------------------------------------------------
    def _peer_up(self, remote_ip, remote_as):
        LOG.info('BGP session with %s (AS %s) established', remote_ip,
                 remote_as, extra=logs.fields(peer=remote_ip))
        self.sessions[remote_ip] = 'Established'
        self._write_status()

    def _peer_down(self, remote_ip, remote_as):
        LOG.warning('BGP session with %s (AS %s) down', remote_ip, remote_as,
                    extra=logs.fields(peer=remote_ip))
        self.sessions[remote_ip] = 'Down'
        self._write_status()

    def _write_status(self):
        if self.status_path is None or self.speaker_obj is None:
            return
        states = self.sessions
        metrics.set_bgp(states, self.peers, len(self.advertised))
        status = {
            'speaker': self.speaker_obj.id,
            'local_as': self.speaker_obj.local_as,
            'peers': [{'ip': ip, 'remote_as': remote_as,
                       'state': states.get(ip, 'Idle')}
                      for ip, (remote_as, _) in sorted(self.peers.items())],
            'routes': [{'prefix': p, 'next_hop': nh}
                       for p, nh in sorted(self.advertised.items())],
            'updated': time.time(),
        }
        data = json.dumps(status).encode()
        client = self.nb.client
        try:
            client.set(self.status_path, data)
        except Exception:
            try:
                client.create(self.status_path, data, makepath=True)
            except Exception as e:
                LOG.warning('could not write BGP status: %s', e)

    def _report_loop(self):
        from os_ken.lib import hub
        while True:
            hub.sleep(self.conf.df_bgp.status_interval)
            self._write_status()


def green_bgp_sockets():
    """Give os-ken's BGP modules eventlet's green socket module, so their
    sessions cooperate with the hub (see the module docstring)."""
    from eventlet.green import socket as green_socket
    from os_ken.services.protocols.bgp import base, core, peer, speaker
    for module in (base, core, peer, speaker):
        module.socket = green_socket


class BgpDaemon(daemon.Daemon):
    """df-bgp's steps in the daemon bootstrap."""

    binary = BINARY
    description = 'Dragonflow BGP service'

    def __init__(self):
        self.service = None

    def register_opts(self, conf):
        green_bgp_sockets()
        # Registers os-ken's own CLI options: must happen before parsing.
        from os_ken.services.protocols.bgp import bgpspeaker  # noqa: F401
        register_opts(conf)

    def metrics_port(self, conf):
        return conf.df_bgp.metrics_port

    def start(self, conf, nb):
        self.service = BgpService(conf, nb)
        return nb.subscribe(self.service.on_nb_change, tables=FOLLOWED,
                            name='bgp')

    def serve(self, conf, nb):
        from os_ken.lib import hub
        LOG.info('%s running', BINARY)
        hub.spawn(self.service.run).wait()


def main(argv=None):
    from os_ken import cfg as osken_cfg
    return daemon.run(BgpDaemon(), argv, osken_cfg.CONF)


if __name__ == '__main__':
    sys.exit(main())
