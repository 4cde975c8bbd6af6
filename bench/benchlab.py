"""The lab the controller-side benchmarks run in, the helpers they share,
and their JSON output."""
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'agent'))
# The lab harness lives with the tests, not in the product.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests'))

from lab_harness.netlab import NetLab  # noqa: E402
from dragonflow.nb.api import NbApi  # noqa: E402
from dragonflow.store import zk  # noqa: E402


@contextlib.contextmanager
def lab_session(prefix, underlay, chassis):
    """A lab with these chassis and agents running: yields (lab, NbApi);
    everything is torn down afterwards."""
    lab = NetLab(tempfile.mkdtemp(prefix=f'df-{prefix}-'), prefix=prefix,
                 underlay=underlay)
    client = None
    try:
        lab.create().start_chassis(chassis)
        client = zk.make_client(lab.zk_address)
        client.start(timeout=20)
        yield lab, NbApi(client)
    finally:
        if client is not None:
            client.stop()
            client.close()
        lab.destroy()
        lab.remove_dir()


def write_json(path, results):
    if path:
        with open(path, 'w') as f:
            json.dump(results, f, indent=2)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def first_reply(vm, ip, action, timeout=30):
    """Seconds from action() to the first ping reply: one-shot pings with a
    0.1 s timeout back to back (a steady ping -i would be slowed down by
    the ICMP unreachable errors the router sends before the route
    exists)."""
    start = time.monotonic()
    action()
    while time.monotonic() - start < timeout:
        proc = subprocess.run(['ip', 'netns', 'exec', vm.ns, 'ping', '-n',
                               '-c', '1', '-W', '0.1', ip],
                              capture_output=True)
        if proc.returncode == 0:
            return time.monotonic() - start
    return None


def wait(predicate, timeout=60, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def network(nb, name, cidr):
    net = nb.create('logical_switch', {'name': name})
    subnet = nb.create('subnet', {'network_id': net.id, 'cidr': cidr})
    return net, subnet


def vm(lab, nb, name, net, chassis, gateway=None):
    port = nb.create('logical_port', {'network_id': net.id, 'name': name})
    machine = lab.add_vm(name, lab.chassis[chassis], port)
    machine.ip = port.ips[0]
    machine.port = port
    if gateway:
        machine.run('ip', 'route', 'add', 'default', 'via', gateway)
    return machine
