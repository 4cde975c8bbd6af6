"""A randomized NB workload and the checks of the change-stream guarantee,
shared by the standalone and the ensemble (leader-kill) tests."""
import random
import threading
import time

from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from dragonflow import errors
from dragonflow.store import zk

TABLES = ('logical_switch', 'logical_port', 'subnet')


class Recorder:
    """Subscriber callback that records positions and applies changes."""

    def __init__(self):
        self.positions = []
        self.state = {}
        self.lock = threading.Lock()

    def __call__(self, change):
        with self.lock:
            if change.position is not None:
                self.positions.append(change.position)
            key = (change.table, change.id)
            if change.action == 'delete':
                self.state.pop(key, None)
            else:
                self.state[key] = change.new.to_dict()


def store_state(nb, tables=TABLES):
    return {(t, o.id): o.to_dict() for t in tables for o in nb.list(t)}


def run_workload(nb, operations, seed, stop=None):
    """Random creates/updates/deletes of networks, subnets and ports (each
    writer knows the objects it made; others may delete them under it).
    Returns the number of writes that committed; refusals and outages
    (NotFound after someone else's cascade, connection loss during a
    leader election) are expected and skipped."""
    rng = random.Random(seed)
    networks, ports = [], []
    done = 0
    for _ in range(operations):
        if stop is not None and stop.is_set():
            break
        roll = rng.random()
        try:
            if not networks or roll < 0.08:
                net = nb.create('logical_switch', {'name': f'n{seed}-{done}'})
                networks.append(net.id)
                nb.create('subnet', {'network_id': net.id,
                                     'cidr': f'10.{rng.randrange(256)}.0.0/16'})
            elif roll < 0.5 or not ports:
                port = nb.create('logical_port',
                                 {'network_id': rng.choice(networks)})
                ports.append(port.id)
            elif roll < 0.8:
                nb.patch('logical_port', rng.choice(ports),
                         {'name': f'p{rng.randrange(10 ** 6)}'})
            elif roll < 0.97:
                victim = ports.pop(rng.randrange(len(ports)))
                nb.delete('logical_port', victim)
            else:
                victim = networks.pop(rng.randrange(len(networks)))
                nb.delete('logical_switch', victim, cascade=True)
            done += 1
        except errors.NotFound as e:
            for known in (networks, ports):
                if e.id in known:
                    known.remove(e.id)
        except errors.StillReferenced:
            pass
        except (errors.NbError, KazooException, KazooTimeoutError):
            time.sleep(0.01)
    return done


def replica_state(subscriber):
    return {key: obj.to_dict() for key, (obj, _) in subscriber.objects.items()}


def wait_converged(nb, subscribers, recorders, timeout=60):
    """Until every subscriber's replica and recorded state equal the store;
    returns the store state."""
    deadline = time.monotonic() + timeout
    while True:
        expected = store_state(nb)
        if all(replica_state(sub) == expected and rec.state == expected
               for sub, rec in zip(subscribers, recorders)):
            return expected
        if time.monotonic() > deadline:
            head = max(map(zk.seq_of, nb.client.get_children(
                nb.store.layout.log)), default=None)
            states = [dict(replica=len(replica_state(s)), recorded=len(r.state),
                           position=s.position, resyncs=s.resyncs,
                           alive=s._thread.is_alive())
                      for s, r in zip(subscribers, recorders)]
            raise AssertionError(f'subscribers did not converge to '
                                 f'{len(expected)} objects, log head {head}: '
                                 f'{states}')
        time.sleep(0.2)
