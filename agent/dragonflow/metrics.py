"""Prometheus metrics of the daemons (``/metrics``; python3-prometheus-client).

Names follow Prometheus conventions: ``dragonflow_`` prefix, counters end
in ``_total``, times in seconds. The process collector of the client
library adds ``process_resident_memory_bytes``, ``process_cpu_seconds_total``
and the like. Each daemon serves them on its own port (``[df]
metrics_port`` for df-local-controller, ``[df_bgp] metrics_port`` for
df-bgp; ``[df] metrics_address``, default 127.0.0.1: localhost only);
port 0 turns it off. A port that cannot be bound is logged and the daemon
runs on without metrics.
"""
import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

LOG = logging.getLogger(__name__)

NB_CHANGES = Counter('dragonflow_nb_changes_applied_total',
                     'NB changes applied to the local view', ['table'])
NB_LAG = Histogram(
    'dragonflow_nb_lag_seconds',
    'NB commit to the flows it changes sent to the switch',
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
NB_RESYNCS = Counter('dragonflow_nb_resyncs_total',
                     'resyncs of the NB view (fell behind the trimmed log)')
ZK_CONNECTED = Gauge('dragonflow_zookeeper_connected',
                     '1 while the ZooKeeper session is connected')
ZK_RECONNECTS = Counter('dragonflow_zookeeper_reconnects_total',
                        'ZooKeeper connections re-established')
ZK_SESSION_LOSSES = Counter('dragonflow_zookeeper_session_losses_total',
                            'ZooKeeper sessions lost (expired)')
FLOWS = Gauge('dragonflow_flows', 'flows installed, per app and table',
              ['app', 'table'])
FULL_SYNCS = Counter('dragonflow_full_syncs_total',
                     'full syncs of the switch (connect, reconnect)')
BUNDLES = Counter('dragonflow_bundle_commits_total',
                  'OpenFlow bundles committed to the switch')
SWITCH_ERRORS = Counter('dragonflow_switch_errors_total',
                        'OpenFlow errors the switch sent back (a failed '
                        'bundle is one)', ['type'])
REFUSED_FLOWS = Counter('dragonflow_flows_refused_total',
                        'flows the pipeline check refused', ['app'])
PACKET_INS = Counter('dragonflow_packet_ins_total',
                     'packet-ins handed to an app', ['app'])
PACKET_INS_DROPPED = Counter(
    'dragonflow_packet_ins_dropped_total',
    'packet-ins not answered: no app asked for them, or an app\'s rate '
    'limit', ['app', 'reason'])
LOCAL_PORTS = Gauge('dragonflow_local_ports',
                    'ports plugged on this chassis (bound here)')
BGP_SESSIONS = Gauge('dragonflow_bgp_sessions',
                     'BGP sessions by peer and state (1 = in that state)',
                     ['peer', 'state'])
BGP_PREFIXES = Gauge('dragonflow_bgp_prefixes_advertised',
                     'prefixes df-bgp advertises')


def serve(address, port):
    """Serve /metrics (a thread of its own); False if it cannot."""
    if not port:
        return False
    try:
        start_http_server(port, addr=address)
    except OSError as e:
        LOG.error('metrics: cannot listen on %s:%d (%s); running without',
                  address, port, e)
        return False
    LOG.info('metrics on http://%s:%d/metrics', address, port)
    return True


def watch_zookeeper(client):
    """Keep the ZooKeeper gauges and counters from the client's states."""
    from kazoo.protocol.states import KazooState
    seen = {'suspended': False}

    def listener(state):
        if state == KazooState.CONNECTED:
            if seen['suspended']:
                ZK_RECONNECTS.inc()
            ZK_CONNECTED.set(1)
        else:
            seen['suspended'] = True
            ZK_CONNECTED.set(0)
            if state == KazooState.LOST:
                ZK_SESSION_LOSSES.inc()
    client.add_listener(listener)
    ZK_CONNECTED.set(1 if client.connected else 0)


def set_flows(counts):
    """dragonflow_flows from a Counter of (app, table, priority)."""
    per = {}
    for (app, table, _), n in counts.items():
        per[(app, str(table))] = per.get((app, str(table)), 0) + n
    FLOWS.clear()
    for (app, table), n in per.items():
        FLOWS.labels(app, table).set(n)


def set_bgp(sessions, peers, prefixes):
    """The BGP gauges: sessions {ip: state} of peers {ip: ...}."""
    BGP_SESSIONS.clear()
    for ip in peers:
        BGP_SESSIONS.labels(ip, sessions.get(ip, 'Idle')).set(1)
    BGP_PREFIXES.set(prefixes)
