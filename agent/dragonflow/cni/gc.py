"""Garbage collection of container ports (``dfctl cni gc``, run as root
on a chassis): a container engine that crashed, or a container killed
so that its engine never ran CNI DEL, must not leak NB ports (and their
addresses) or br-int ports.

A container is gone when its network namespace (``cni-netns``, recorded
on the br-int port at ADD) no longer exists or no process lives in it
any more (engines keep a namespace file bound after the container died);
its port is collected once it was plugged longer than the grace period
ago (``cni-added``), so an ADD in progress, whose namespace has no
process yet, is never taken. Collecting removes the br-int port, the
host end of the veth (the container end goes with it) and the NB port.
"""
import json
import logging
import os
import subprocess
import time

from dragonflow import errors
from dragonflow.cni import wiring

LOG = logging.getLogger(__name__)
DEFAULT_GRACE = 60.0


def plugged(vsctl):
    """[(OVS interface name, external_ids)] of the container ports."""
    proc = subprocess.run(vsctl + ['--format=json', '--columns=name,'
                                   'external_ids', 'find', 'Interface',
                                   'external_ids:cni-container!=""'],
                          capture_output=True, text=True, check=True)
    out = []
    for name, ids in json.loads(proc.stdout)['data']:
        out.append((name, dict(ids[1])))
    return out


def namespaces_in_use():
    """(device, inode) of every network namespace a process lives in."""
    out = set()
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            ns = os.stat(f'/proc/{pid}/ns/net')
        except OSError:
            continue            # the process went meanwhile
        out.add((ns.st_dev, ns.st_ino))
    return out


def _alive(path, in_use):
    try:
        ns = os.stat(path)
    except OSError:
        return False
    return (ns.st_dev, ns.st_ino) in in_use


def collect(nb, vsctl, bridge, grace=DEFAULT_GRACE, now=None):
    """Remove the ports of containers that are gone; returns
    [(port id, container id)] removed."""
    now = time.time() if now is None else now
    removed = []
    candidates = [(name, ids) for name, ids in plugged(vsctl)
                  if now - float(ids.get('cni-added', '0') or 0) >= grace]
    in_use = namespaces_in_use() if candidates else set()
    for name, ids in candidates:
        if _alive(ids.get('cni-netns', ''), in_use):
            continue
        wiring.remove_host_end(vsctl, bridge, name)
        port_id = ids.get('iface-id')
        if port_id:
            try:
                nb.delete('logical_port', port_id)
            except errors.NotFound:
                pass
        LOG.info('collected port %s of container %s (gone)', port_id,
                 ids.get('cni-container'))
        removed.append((port_id, ids.get('cni-container')))
    return removed
