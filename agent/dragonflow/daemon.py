"""What every Dragonflow daemon does the same way, in one bootstrap.

:func:`run` takes a :class:`Daemon` through the same named steps for every
service: load the configuration (files, then command line), check it,
connect to the NB database, start following it, wait for the first full
NB sync, prepare the local side, register the service's health, install
the signal handlers, serve. Exit codes, the same for every daemon:

- 0: stopped by SIGTERM/SIGINT;
- 1: no initial NB sync within ``SYNC_TIMEOUT`` seconds;
- 2: bad configuration (the log line names the option);
- 3: the NB database (ZooKeeper) is unreachable.

Logs go to stderr (journald picks them up).
"""
import logging
import os
import signal
import sys
import threading

from dragonflow import conf as df_conf
from dragonflow import errors
from dragonflow import logs
from dragonflow import metrics

LOG = logging.getLogger(__name__)
SYNC_TIMEOUT = 60.0
EXIT_OK, EXIT_NO_SYNC, EXIT_CONFIG, EXIT_NB = 0, 1, 2, 3
NOISY = ('kazoo.client', 'os_ken.controller.controller',
         'os_ken.base.app_manager', 'ovsdbapp', 'bgpspeaker',
         'os_ken.services')


def setup_logging(debug):
    """One line per event with key=value fields (dragonflow.logs)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.KeyValueFormatter(debug))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        handlers=[handler], force=True)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


def exit_on_signals(reporter, nb, note='', grace=5.0):
    """On SIGTERM/SIGINT: withdraw the service's presence, close the
    ZooKeeper session, exit 0 (without waiting for green threads). With
    ZooKeeper unreachable the cleanup could block: after ``grace``
    seconds the process exits anyway."""
    def shutdown(signum, frame):
        LOG.info('signal %d: stopping%s', signum, note)
        timer = threading.Timer(grace, os._exit, (0,))
        timer.daemon = True
        timer.start()
        try:
            reporter.stop()
            nb.close()
        finally:
            os._exit(0)
    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)


class ConfigError(Exception):
    """A configuration a daemon cannot run with; the message names the
    option."""


class Daemon:
    """One Dragonflow service. Subclasses fill in the steps; every step
    but :meth:`serve` returns (serve blocks until the process ends)."""

    binary = None            # e.g. df-local-controller
    description = None
    stop_note = ''           # said in the log when a signal stops it

    def register_opts(self, conf):
        """Register the service's own options (before parsing)."""

    def check(self, conf):
        """Raise ConfigError for a configuration it cannot run with."""

    def start(self, conf, nb):
        """Start following NB; returns what has ``wait_synced(timeout)``.
        May raise ConfigError."""
        raise NotImplementedError

    def wait_synced(self, conf, following, timeout):
        """Until the first NB sync (False: not within timeout seconds)."""
        return following.wait_synced(timeout)

    def prepare(self, conf, nb):
        """After the first NB sync: set up the local side."""

    def metrics_port(self, conf):
        """Port of the daemon's /metrics (0: none)."""
        return conf.df.metrics_port

    def health_ids(self, conf):
        """(chassis, host) the service reports its health as."""
        return conf.df.host, conf.df.host

    def serve(self, conf, nb):
        """Run until the process ends."""
        raise NotImplementedError


def load_conf(daemon, argv, conf):
    """Register the options, parse files and argv, set up logging."""
    from oslo_config import cfg
    df_conf.register_opts(conf)
    daemon.register_opts(conf)
    conf.register_cli_opt(cfg.BoolOpt('debug', default=False,
                                      help='verbose logs'))
    df_conf.load(sys.argv[1:] if argv is None else argv, conf=conf,
                 prog=daemon.binary, description=daemon.description)
    setup_logging(conf.debug)
    return conf


def run(daemon, argv, conf):
    """Take daemon through the bootstrap; returns the exit code."""
    from dragonflow.nb import api as nb_api
    from dragonflow.nb import health
    load_conf(daemon, argv, conf)
    try:
        daemon.check(conf)
        nb = nb_api.NbApi.from_conf(conf)
        following = daemon.start(conf, nb)
    except ConfigError as e:
        LOG.error('%s: %s', daemon.binary, e)
        return EXIT_CONFIG
    except errors.NbUnavailable as e:
        LOG.error('%s: NB database unreachable: %s', daemon.binary, e)
        return EXIT_NB
    if not daemon.wait_synced(conf, following, SYNC_TIMEOUT):
        LOG.error('%s: no initial NB sync from ZooKeeper within %d s',
                  daemon.binary, SYNC_TIMEOUT)
        nb.close()
        return EXIT_NO_SYNC
    metrics.watch_zookeeper(nb.client)
    metrics.serve(conf.df.metrics_address, daemon.metrics_port(conf))
    daemon.prepare(conf, nb)
    chassis, host = daemon.health_ids(conf)
    reporter = health.ServiceReporter(nb, daemon.binary, chassis, host,
                                      conf.df.report_interval).start()
    exit_on_signals(reporter, nb, daemon.stop_note)
    daemon.serve(conf, nb)
    return EXIT_OK
