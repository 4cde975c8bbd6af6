"""A stand-in daemon for health tests: registers a service and heartbeats
until killed. Usage: service_process.py HOSTS ROOT CHASSIS INTERVAL"""
import sys
import time

from dragonflow.nb.api import NbApi
from dragonflow.nb.health import ServiceReporter
from dragonflow.store import zk


def main(hosts, root, chassis, interval):
    client = zk.make_client(hosts, timeout=2.0)
    client.start(timeout=10)
    nb = NbApi(client, root)
    ServiceReporter(nb, 'df-test-daemon', chassis, 'testhost',
                    float(interval)).start()
    print('registered', flush=True)
    while True:
        time.sleep(1)


if __name__ == '__main__':
    main(*sys.argv[1:])
