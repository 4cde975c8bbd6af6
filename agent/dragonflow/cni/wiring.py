"""The host side of a container's port: a veth pair whose container end
goes into the container's network namespace with the port's MAC,
addresses, routes and MTU, and whose host end is plugged into br-int
with the port's id (``iface-id``, what the agent binds) and the
container's (``cni-container``, ``cni-ifname``, ``cni-netns`` and
``cni-added``: what DEL and garbage collection find it by).

Every step is a plain ``ip``/``nsenter``/``ovs-vsctl`` command; a failed
one raises CniError (I/O failure) with the command and its error.
"""
import ctypes
import ipaddress
import json
import os
import socket
import struct
import subprocess
import threading
import time
import zlib

from dragonflow.cni import spec


def host_name(container_id, ifname):
    """The host end's name (15 characters at most, stable per container
    and interface)."""
    crc = zlib.crc32(f'{container_id}/{ifname}'.encode()) & 0xffffffff
    return f'dfc{crc:08x}'


def _run(argv, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True)
    if check and proc.returncode:
        raise spec.CniError(spec.IO_FAILURE, f'{" ".join(argv)}: '
                            f'{proc.stderr.strip() or proc.returncode}')
    return proc


def _in(netns, *argv, check=True):
    return _run(['nsenter', f'--net={netns}', *argv], check=check)


def link_exists(name):
    """Whether this network namespace has the link (netlink, not /sys: a
    process that entered another namespace keeps its /sys view)."""
    return _run(['ip', 'link', 'show', name], check=False).returncode == 0


def plug(vsctl, bridge, request, port, mtu, addresses, routes,
         userspace=False):
    """Create and plug the pair. addresses: CIDRs (``10.0.0.5/24``);
    routes: (destination, gateway); userspace: the bridge runs on the
    userspace datapath, which does not complete the checksums a veth
    leaves to offload (TCP and UDP would silently fail): transmit
    offload off on the container end."""
    if not os.path.exists(request.netns):
        raise spec.CniError(spec.INVALID_ENV, f'CNI_NETNS: {request.netns} '
                            'does not exist')
    host = host_name(request.container_id, request.ifname)
    peer = 'dft' + host[3:]
    _run(['ip', 'link', 'add', host, 'mtu', str(mtu), 'type', 'veth',
          'peer', 'name', peer, 'mtu', str(mtu)])
    _run(['ip', 'link', 'set', peer, 'netns', request.netns])
    _in(request.netns, 'ip', 'link', 'set', peer, 'name', request.ifname,
        'address', port.macs[0])
    for cidr in addresses:
        if ':' in cidr:
            _in(request.netns, 'sysctl', '-qw',
                f'net.ipv6.conf.{request.ifname}.accept_dad=0')
        _in(request.netns, 'ip', 'addr', 'add', cidr, 'dev', request.ifname)
    if userspace:
        try:
            _in(request.netns, 'ethtool', '-K', request.ifname, 'tx', 'off')
        except spec.CniError as e:
            raise spec.CniError(spec.IO_FAILURE, f'{e.msg} (ethtool turns '
                                'checksum offload off for the userspace '
                                'datapath)') from None
    _in(request.netns, 'ip', 'link', 'set', request.ifname, 'up')
    for destination, gateway in routes:
        _in(request.netns, 'ip', 'route', 'add', destination, 'via', gateway,
            'dev', request.ifname)
    _run(['ip', 'link', 'set', host, 'up'])
    _run(vsctl + ['--may-exist', 'add-port', bridge, host, '--', 'set',
                  'Interface', host, f'external_ids:iface-id={port.id}',
                  f'external_ids:cni-container={request.container_id}',
                  f'external_ids:cni-ifname={request.ifname}',
                  f'external_ids:cni-netns={request.netns}',
                  f'external_ids:cni-added={int(time.time())}'])
    return host


CLONE_NEWNET = 0x40000000
BROADCAST = b'\xff' * 6


def announce(netns, ifname, mac, addresses):
    """Gratuitous ARP replies, broadcast from the container, for its IPv4
    addresses. Containers come and go fast and addresses are reused: a
    neighbour that cached an address's previous owner would otherwise
    send to the old MAC until its cache entry times out (~30 s); a reply
    also passes the agent's ARP responder, which answers requests (a
    gratuitous request would be answered back to the container alone).
    Sent from a thread that enters the container's namespace
    (``setns`` is per thread), so the plugin's own stays as it is."""
    hw = bytes(int(x, 16) for x in mac.split(':'))
    frames = []
    for cidr in addresses:
        ip = ipaddress.ip_interface(cidr).ip
        if ip.version == 4:
            frames.append(BROADCAST + hw + b'\x08\x06' + struct.pack(
                '!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 2, hw, ip.packed,
                BROADCAST, ip.packed))
    failure = []

    def send():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(netns, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), 'setns')
            finally:
                os.close(fd)
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
                sock.bind((ifname, 0))
                for frame in frames:
                    sock.send(frame)
        except OSError as e:
            failure.append(e)
    if frames:
        thread = threading.Thread(target=send)
        thread.start()
        thread.join()
    if failure:
        raise spec.CniError(spec.IO_FAILURE, f'gratuitous ARP from '
                            f'{ifname} in {netns}: {failure[0]}')


def remove_host_end(vsctl, bridge, host):
    """Unplug the host end from the bridge and delete it (its container
    end goes with it); what is already gone is fine."""
    _run(vsctl + ['--if-exists', 'del-port', bridge, host])
    if link_exists(host):
        _run(['ip', 'link', 'del', host], check=False)


def unplug(vsctl, bridge, request):
    """Remove what plug made; what is already gone is fine."""
    remove_host_end(vsctl, bridge,
                    host_name(request.container_id, request.ifname))
    if request.netns and os.path.exists(request.netns):
        _in(request.netns, 'ip', 'link', 'del', request.ifname, check=False)


def container_addresses(request):
    """(MAC, [CIDR]) of the container's interface; CniError if it is
    not there."""
    proc = _in(request.netns, 'ip', '-j', 'addr', 'show', 'dev',
               request.ifname, check=False)
    if proc.returncode:
        raise spec.CniError(spec.IO_FAILURE, f'{request.ifname} is not in '
                            f'{request.netns}')
    link = json.loads(proc.stdout)[0]
    return link.get('address'), [
        f'{a["local"]}/{a["prefixlen"]}' for a in link.get('addr_info', [])
        if a.get('scope') == 'global']


def plugged_iface_id(vsctl, host):
    """The iface-id of the host end's OVS interface, or None."""
    proc = _run(vsctl + ['--if-exists', 'get', 'Interface', host,
                         'external_ids:iface-id'], check=False)
    value = proc.stdout.strip().strip('"')
    return value or None
