"""podman 4.3 with the CNI network backend for the lab, kept to a
directory of its own (storage, run directory, configuration), running
containers on a lab chassis: podman runs in the chassis' network
namespace (``nsenter --net``, so its CNI plugins do too, and the
container namespaces it mounts stay visible to everyone) and finds the
``dragonflow`` plugin in a plugin directory of the lab's.

Two settings this machine needs: the ``runc`` runtime (crun refuses a
host with hybrid cgroups) and no default ulimits (podman's exceed the
host's hard limits). The image is busybox-static imported with
``podman import`` (no registry is reachable)."""
import json
import os
import shutil
import struct
import subprocess
import sys

IMAGE = 'localhost/dfbusybox:latest'
APPLETS = ('sh', 'ping', 'ip', 'sleep', 'cat', 'nc', 'wget', 'ifconfig',
           'route', 'echo', 'true')


class Podman:
    def __init__(self, directory, agent_dir):
        self.dir = directory
        self.plugins = os.path.join(directory, 'cni-plugins')
        os.makedirs(self.plugins, exist_ok=True)
        wrapper = os.path.join(self.plugins, 'dragonflow')
        with open(wrapper, 'w') as f:
            f.write(f'#!/bin/sh\nPYTHONPATH={agent_dir} exec {sys.executable}'
                    ' -m dragonflow.cni.plugin\n')
        os.chmod(wrapper, 0o755)
        self.conf = os.path.join(directory, 'containers.conf')
        with open(self.conf, 'w') as f:
            f.write('[containers]\ndefault_ulimits = []\n\n'
                    '[engine]\nruntime = "runc"\n'
                    'cgroup_manager = "cgroupfs"\n\n'
                    '[network]\nnetwork_backend = "cni"\n'
                    f'cni_plugin_dirs = ["{self.plugins}", "/usr/lib/cni"]\n')

    def podman(self, chassis, *args, check=True, timeout=120):
        """podman args in chassis' network namespace (with the network
        configurations of that chassis)."""
        env = dict(os.environ, CONTAINERS_CONF=self.conf)
        argv = ['podman', '--root', os.path.join(self.dir, 'root'),
                '--runroot', os.path.join(self.dir, 'run'),
                '--network-config-dir', self.net_dir(chassis), *args]
        if chassis is not None:
            argv = ['nsenter', f'--net=/var/run/netns/{chassis.ns}'] + argv
        proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                              timeout=timeout)
        if check and proc.returncode:
            raise RuntimeError(f'podman {" ".join(args)}: {proc.stderr}')
        return proc

    def close(self):
        """Remove the containers and what podman leaves mounted under its
        directory (the storage driver's own mount, a killed container's
        layers), so the lab's directory goes with the lab."""
        self.podman(None, 'rm', '--all', '--force', '--time', '0',
                    check=False)
        with open('/proc/self/mounts') as f:
            mounts = [line.split()[1] for line in f]
        for mount in sorted((m for m in mounts
                             if m.startswith(self.dir + '/')),
                            key=len, reverse=True):
            subprocess.run(['umount', '--lazy', mount], check=False,
                           capture_output=True)

    def net_dir(self, chassis):
        path = os.path.join(self.dir, 'net.d',
                            chassis.name if chassis else '_')
        os.makedirs(path, exist_ok=True)
        return path

    def image(self):
        """The busybox-static image, imported once (RuntimeError if
        /bin/busybox is the dynamic one: it would not run in the image)."""
        if self.podman(None, 'image', 'exists', IMAGE,
                       check=False).returncode == 0:
            return IMAGE
        if not _static('/bin/busybox'):
            raise RuntimeError('/bin/busybox is dynamically linked: install '
                               'busybox-static (make deps)')
        rootfs = os.path.join(self.dir, 'rootfs')
        os.makedirs(os.path.join(rootfs, 'bin'), exist_ok=True)
        shutil.copy('/bin/busybox', os.path.join(rootfs, 'bin', 'busybox'))
        for applet in APPLETS:
            link = os.path.join(rootfs, 'bin', applet)
            if not os.path.lexists(link):
                os.symlink('busybox', link)
        tar = subprocess.Popen(['tar', '-C', rootfs, '-c', '.'],
                               stdout=subprocess.PIPE)
        env = dict(os.environ, CONTAINERS_CONF=self.conf)
        subprocess.run(['podman', '--root', os.path.join(self.dir, 'root'),
                        '--runroot', os.path.join(self.dir, 'run'),
                        'import', '-', IMAGE], stdin=tar.stdout, check=True,
                       capture_output=True, env=env)
        tar.wait()
        return IMAGE

    def network(self, chassis, name, **plugin):
        """A podman network (a CNI conflist) of type dragonflow on
        chassis, with these plugin fields (network, security_groups,
        ...), using that chassis' Dragonflow configuration."""
        config = {'cniVersion': '1.0.0', 'name': name, 'plugins': [dict(
            {'type': 'dragonflow',
             'config_file': os.path.join(chassis.dir, 'dragonflow.ini')},
            **plugin)]}
        with open(os.path.join(self.net_dir(chassis), f'{name}.conflist'),
                  'w') as f:
            json.dump(config, f)

    def run(self, chassis, name, network, *command):
        """Start a container (detached); its id."""
        return self.podman(chassis, 'run', '-d', '--name', name,
                           '--network', network, self.image(),
                           *(command or ('sleep', '3600'))).stdout.strip()

    def exec(self, chassis, name, *command, check=False):
        return self.podman(chassis, 'exec', name, *command, check=check)

    def address(self, chassis, name, network):
        out = self.podman(chassis, 'inspect', name).stdout
        return json.loads(out)[0]['NetworkSettings']['Networks'][network][
            'IPAddress']

    def rm(self, chassis, name):
        self.podman(chassis, 'rm', '-f', '-t', '0', name, check=False)


def _static(path):
    """Whether an ELF64 executable has no program interpreter."""
    with open(path, 'rb') as f:
        header = f.read(64)
        phoff, = struct.unpack_from('<Q', header, 32)
        size, count = struct.unpack_from('<HH', header, 54)
        for i in range(count):
            f.seek(phoff + i * size)
            if struct.unpack('<I', f.read(4))[0] == 3:      # PT_INTERP
                return False
    return True
