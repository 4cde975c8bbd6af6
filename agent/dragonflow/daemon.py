"""What every Dragonflow daemon does the same way: log to stderr (journald
picks it up) and stop cleanly on SIGTERM/SIGINT."""
import logging
import os
import signal
import sys
import threading

LOG = logging.getLogger(__name__)
NOISY = ('kazoo.client', 'os_ken.controller.controller',
         'os_ken.base.app_manager', 'ovsdbapp', 'bgpspeaker',
         'os_ken.services')


def setup_logging(debug):
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, stream=sys.stderr,
        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
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
