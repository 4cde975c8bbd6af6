"""systemd-booted Debian 12 nodes for the lab (systemd-nspawn containers).

``NodeImage`` builds (once, cached) a minimal Debian 12 root filesystem
with systemd and the distribution packages Dragonflow depends on, so nodes
need no network to install the project's packages from a local repository.
``Node`` boots one container from it with a volatile overlay (the image
stays clean), a veth to the host, and runs commands inside with nsenter.
"""
import os
import re
import shutil
import subprocess
import time

DEFAULT_IMAGE = '/var/cache/dragonflow-lab/bookworm-node'
NODE_PACKAGES = ('systemd', 'systemd-sysv', 'dbus', 'iproute2', 'procps',
                 'python3', 'adduser', 'ca-certificates')
# What the project's packages and roles install, present in the image so
# nodes need no route to a mirror.
DEPENDENCIES = ('openvswitch-switch', 'python3-os-ken', 'python3-ovsdbapp',
                'python3-kazoo', 'python3-oslo.config', 'python3-apt',
                'zookeeper', 'default-jre-headless', 'iputils-ping',
                'ethtool', 'python3-prometheus-client', 'prometheus')
IMAGE_ID = ' '.join(NODE_PACKAGES + DEPENDENCIES)


def debian_mirror():
    """The Debian mirror this machine's apt uses."""
    paths = ['/etc/apt/sources.list']
    folder = '/etc/apt/sources.list.d'
    if os.path.isdir(folder):
        paths += [os.path.join(folder, p) for p in sorted(os.listdir(folder))]
    for path in paths:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        for url in re.findall(r'(?:URIs:|deb)\s+(https?://\S+)', text):
            if 'debian' in url and 'security' not in url:
                return url
    return 'http://deb.debian.org/debian'


class NodeImage:
    def __init__(self, path=DEFAULT_IMAGE):
        self.path = path
        self.stamp = os.path.join(path, '.dragonflow-image-ready')

    def ready(self):
        try:
            with open(self.stamp) as f:
                return f.read().strip() == IMAGE_ID
        except OSError:
            return False

    def build(self, log=None):
        """debootstrap + the dependencies, services kept from starting in
        the chroot (a policy-rc.d that refuses, removed afterwards)."""
        if self.ready():
            return self
        shutil.rmtree(self.path, ignore_errors=True)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        out = open(log or os.devnull, 'ab')
        mirror = debian_mirror()
        subprocess.run(['debootstrap', '--variant=minbase',
                        f'--include={",".join(NODE_PACKAGES)}', 'bookworm',
                        self.path, mirror], check=True, stdout=out, stderr=out)
        policy = os.path.join(self.path, 'usr/sbin/policy-rc.d')
        with open(policy, 'w') as f:
            f.write('#!/bin/sh\nexit 101\n')
        os.chmod(policy, 0o755)
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive',
                   PATH='/usr/sbin:/usr/bin:/sbin:/bin')
        proc = os.path.join(self.path, 'proc')
        subprocess.run(['mount', '-t', 'proc', 'proc', proc], check=True)
        try:      # Java's postinst needs /proc
            subprocess.run(['chroot', self.path, 'apt-get', 'install', '-y',
                            '--no-install-recommends', *DEPENDENCIES],
                           check=True, stdout=out, stderr=out, env=env)
            subprocess.run(['chroot', self.path, 'apt-get', 'clean'],
                           check=True)
        finally:
            subprocess.run(['umount', proc], check=False)
        os.unlink(policy)
        # Nodes have no route out: only the local repositories the lab
        # binds in are used.
        with open(os.path.join(self.path, 'etc/apt/sources.list'), 'w') as f:
            f.write('')
        for name in os.listdir(os.path.join(self.path,
                                            'etc/apt/sources.list.d')):
            os.unlink(os.path.join(self.path, 'etc/apt/sources.list.d', name))
        with open(self.stamp, 'w') as f:
            f.write(IMAGE_ID + '\n')
        return self


class Node:
    """A booted container. ``binds``: {host path: node path} (read-only)."""

    def __init__(self, image, name, workdir, binds=None, host_ip=None,
                 node_ip=None, prefixlen=30, bridge=None):
        """With ``bridge`` the node's veth joins that host bridge (nodes on
        one bridge reach each other); else ``host_ip`` is put on the host
        end of a point-to-point veth."""
        self.image = image
        self.name = name
        self.workdir = workdir
        self.binds = binds or {}
        self.bridge = bridge
        self.host_ip, self.node_ip, self.prefixlen = host_ip, node_ip, prefixlen
        self.proc = None
        self.pid1 = None

    @property
    def host_veth(self):
        return f've-{self.name}'[:15]

    def boot(self, timeout=60):
        os.makedirs(self.workdir, exist_ok=True)
        log = open(os.path.join(self.workdir, f'{self.name}.console'), 'ab')
        argv = ['systemd-nspawn', '-b', '-D', self.image.path,
                '--volatile=overlay', '--register=no', '--keep-unit',
                '-M', self.name]
        argv.append(f'--network-bridge={self.bridge}' if self.bridge
                    else '--network-veth')
        for host, node in self.binds.items():
            argv.append(f'--bind-ro={host}:{node}')
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pid1 = self._find_pid1()
            if self.pid1 and self._running():
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f'node {self.name} exited; see '
                                   f'{self.workdir}/{self.name}.console')
            time.sleep(0.3)
        else:
            raise TimeoutError(f'node {self.name} did not boot')
        if self.host_ip and not self.bridge:
            subprocess.run(['ip', 'addr', 'add',
                            f'{self.host_ip}/{self.prefixlen}', 'dev',
                            self.host_veth], check=True)
            subprocess.run(['ip', 'link', 'set', self.host_veth, 'up'],
                           check=True)
        if self.node_ip:
            self.run('ip', 'addr', 'add', f'{self.node_ip}/{self.prefixlen}',
                     'dev', 'host0')
            self.run('ip', 'link', 'set', 'host0', 'up')
            self.run('ethtool', '-K', 'host0', 'tx', 'off', check=False)
        return self

    def _find_pid1(self):
        try:
            with open(f'/proc/{self.proc.pid}/task/{self.proc.pid}/'
                      'children') as f:
                children = f.read().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def _running(self):
        out = self.run('systemctl', 'is-system-running', check=False)
        return out.strip() in ('running', 'degraded')

    def run(self, *cmd, check=True, timeout=300, input=None):
        proc = subprocess.run(['nsenter', '-t', str(self.pid1), '-a',
                               '/usr/bin/env', '-i',
                               'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
                               'DEBIAN_FRONTEND=noninteractive', *cmd],
                              capture_output=True, text=True, timeout=timeout,
                              input=input)
        if check and proc.returncode != 0:
            raise RuntimeError(f'{self.name}: {" ".join(cmd)} failed '
                               f'({proc.returncode}): {proc.stderr.strip()}'
                               f'{proc.stdout[-2000:]}')
        return proc.stdout

    def write(self, path, text):
        self.run('sh', '-c', f'mkdir -p "$(dirname {path})" && cat > {path}',
                 input=text)

    def stop(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.pid1:
            self.run('systemctl', 'poweroff', check=False)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
