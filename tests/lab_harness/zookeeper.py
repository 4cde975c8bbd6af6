"""Real ZooKeeper servers for the lab and the tests (Debian's ``zookeeper``
package, started as plain Java processes: no systemd, no stock config).

``ZkServer`` is one standalone server; ``ZkEnsemble`` three (or more)
quorum peers on loopback. Each lives in its own directory and is stopped by
its PID only.
"""
import os
import signal
import socket
import subprocess
import time

CLASSPATH = ':'.join([
    '/etc/zookeeper/conf', '/usr/share/java/zookeeper.jar',
    '/usr/share/java/zookeeper-jute.jar', '/usr/share/java/slf4j-api.jar',
    '/usr/share/java/slf4j-log4j12.jar', '/usr/share/java/log4j-1.2.jar',
    '/usr/share/java/netty-handler.jar', '/usr/share/java/netty-common.jar',
    '/usr/share/java/netty-transport.jar', '/usr/share/java/netty-buffer.jar',
    '/usr/share/java/netty-codec.jar', '/usr/share/java/netty-resolver.jar',
    '/usr/share/java/netty-transport-native-epoll.jar',
    '/usr/share/java/netty-transport-native-unix-common.jar',
])


def free_port(host='127.0.0.1'):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def four_letter(host, port, cmd, timeout=1.0):
    """Send a ZooKeeper four-letter command; '' if it does not answer."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(cmd.encode())
            s.shutdown(socket.SHUT_WR)
            out = b''
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
            return out.decode(errors='replace')
    except OSError:
        return ''


def mode(host, port):
    """'standalone', 'leader', 'follower' or None."""
    for line in four_letter(host, port, 'srvr').splitlines():
        if line.startswith('Mode:'):
            return line.split(':', 1)[1].strip()
    return None


class ZkServer:
    """One ZooKeeper server process (standalone, or a quorum peer)."""

    def __init__(self, workdir, port=None, host='127.0.0.1', myid=None,
                 peers=None, heap_mb=128, extra_config=None, netns=None,
                 observers=()):
        self.workdir = os.path.abspath(workdir)
        self.host = host
        self.port = port or free_port(host)
        self.myid = myid
        self.peers = peers or {}     # myid -> (peer port, election port)
        self.observers = set(observers)     # myids of non-voting peers
        self.heap_mb = heap_mb
        self.extra_config = extra_config or {}
        self.netns = netns
        self.proc = None

    @property
    def address(self):
        return f'{self.host}:{self.port}'

    def write_config(self):
        data = os.path.join(self.workdir, 'data')
        os.makedirs(data, exist_ok=True)
        lines = {
            'tickTime': 2000 if not self.peers else 500,
            'initLimit': 10, 'syncLimit': 5, 'dataDir': data,
            'clientPort': self.port, 'clientPortAddress': self.host,
            'admin.enableServer': 'false', '4lw.commands.whitelist': '*',
            'maxClientCnxns': 0, 'minSessionTimeout': 1000,
        }
        if self.myid in self.observers:
            lines['peerType'] = 'observer'
        lines.update(self.extra_config)
        text = ''.join(f'{k}={v}\n' for k, v in lines.items())
        for sid, (peer, election) in sorted(self.peers.items()):
            role = ':observer' if sid in self.observers else ''
            text += f'server.{sid}={self.host}:{peer}:{election}{role}\n'
        if self.myid is not None:
            with open(os.path.join(data, 'myid'), 'w') as f:
                f.write(f'{self.myid}\n')
        path = os.path.join(self.workdir, 'zoo.cfg')
        with open(path, 'w') as f:
            f.write(text)
        return path

    def start(self):
        cfg = self.write_config()
        log = open(os.path.join(self.workdir, 'zookeeper.log'), 'ab')
        prefix = ['ip', 'netns', 'exec', self.netns] if self.netns else []
        self.proc = subprocess.Popen(
            prefix + ['java', f'-Xms{self.heap_mb}m', f'-Xmx{self.heap_mb}m',
             '-XX:+UseSerialGC', '-Djava.net.preferIPv4Stack=true',
             f'-Dzookeeper.log.dir={self.workdir}',
             '-Dzookeeper.root.logger=INFO,CONSOLE',
             '-cp', CLASSPATH,
             'org.apache.zookeeper.server.quorum.QuorumPeerMain', cfg],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        with open(os.path.join(self.workdir, 'zookeeper.pid'), 'w') as f:
            f.write(f'{self.proc.pid}\n')
        return self

    def wait_ready(self, timeout=30):
        """Until the server serves (standalone) or has joined a quorum."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'ZooKeeper {self.address} exited; see '
                                   f'{self.workdir}/zookeeper.log')
            if mode(self.host, self.port) in ('standalone', 'leader',
                                              'follower', 'observer'):
                return self
            time.sleep(0.1)
        raise TimeoutError(f'ZooKeeper {self.address} not ready in {timeout}s')

    def mode(self):
        return mode(self.host, self.port)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self):
        self.kill(signal.SIGTERM)


class ZkEnsemble:
    """N ZooKeeper peers on loopback forming one quorum, and optionally
    observers: non-voting members that serve reads and watches (and
    forward writes to the leader) without weighing on the quorum."""

    def __init__(self, workdir, size=3, observers=0, heap_mb=128):
        ids = range(1, size + observers + 1)
        peers = {i: (free_port(), free_port()) for i in ids}
        watching = set(ids[size:])
        self.servers = [ZkServer(os.path.join(workdir, f'zk{i}'), myid=i,
                                 peers=peers, observers=watching,
                                 heap_mb=heap_mb) for i in peers]
        self.voters = [s for s in self.servers if s.myid not in watching]
        self.observers = [s for s in self.servers if s.myid in watching]

    @property
    def hosts(self):
        return ','.join(s.address for s in self.servers)

    @property
    def voter_hosts(self):
        return ','.join(s.address for s in self.voters)

    def start(self, timeout=60):
        for s in self.servers:
            s.start()
        for s in self.servers:
            s.wait_ready(timeout)
        return self

    def leader(self):
        for s in self.servers:
            if s.alive() and s.mode() == 'leader':
                return s
        return None

    def wait_leader(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None:
                return leader
            time.sleep(0.1)
        raise TimeoutError('no ZooKeeper leader elected')

    def stop(self):
        for s in self.servers:
            s.stop()
