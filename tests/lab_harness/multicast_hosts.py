"""Multicast programs run inside lab VMs: a receiver that joins and
leaves on command with the real socket API (IP_ADD_MEMBERSHIP /
IPV6_JOIN_GROUP, so the VM's own kernel sends the IGMP/MLD reports and
answers the querier), a sender, and a host that reports a membership once
and then never answers a query (a crashed stack)."""
import subprocess
import sys
import threading
import time

RECEIVER = r'''
import socket, struct, sys, threading
group, port = sys.argv[1], int(sys.argv[2])
v6 = ':' in group
family = socket.AF_INET6 if v6 else socket.AF_INET
index = socket.if_nametoindex('eth0')
s = socket.socket(family, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('::' if v6 else '0.0.0.0', port))
lock = threading.Lock()
def say(line):
    with lock:      # two threads print: one line at a time
        print(line, flush=True)
def member(join):
    if v6:
        option = socket.IPV6_JOIN_GROUP if join else \
            socket.IPV6_LEAVE_GROUP
        s.setsockopt(socket.IPPROTO_IPV6, option, socket.inet_pton(
            family, group) + struct.pack('@I', index))
    else:
        option = socket.IP_ADD_MEMBERSHIP if join else \
            socket.IP_DROP_MEMBERSHIP
        s.setsockopt(socket.IPPROTO_IP, option, socket.inet_aton(group) +
                     socket.inet_aton('0.0.0.0') + struct.pack('@i', index))
def commands():
    for line in sys.stdin:
        member(line.strip() == 'join')
        say('done ' + line.strip())
threading.Thread(target=commands, daemon=True).start()
say('ready')
while True:
    data, _ = s.recvfrom(2048)
    say('got ' + data.decode())
'''

SENDER = r'''
import socket, struct, sys, time
group, port, count, interval, tag, ttl = sys.argv[1], int(sys.argv[2]), \
    int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], int(sys.argv[6])
v6 = ':' in group
index = socket.if_nametoindex('eth0')
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET,
                  socket.SOCK_DGRAM)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
else:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                 socket.inet_aton('0.0.0.0') * 2 + struct.pack('@i', index))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
for i in range(count):
    s.sendto(f'{tag} {i}'.encode(), (group, port))
    time.sleep(interval)
'''

SILENT_REPORT = r'''
import socket, struct, sys
group = sys.argv[1]
body = struct.pack('!BBH4s', 0x16, 0, 0, socket.inet_aton(group))
total = sum(struct.unpack('!4H', body))
total = (total & 0xffff) + (total >> 16)
body = struct.pack('!BBH4s', 0x16, 0, ~total & 0xffff,
                   socket.inet_aton(group))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
             socket.inet_aton('0.0.0.0') * 2 +
             struct.pack('@i', socket.if_nametoindex('eth0')))
s.sendto(body, (group, 0))
'''
PORT = 5007


class Receiver:
    """A receiving program in vm, bound to the group's port (not joined
    until :meth:`join`); :meth:`got` is what it received, by tag."""

    def __init__(self, vm, group, port=PORT):
        self.vm = vm
        self.lines = []
        self.proc = subprocess.Popen(
            ['ip', 'netns', 'exec', vm.ns, sys.executable, '-c', RECEIVER,
             group, str(port)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self._wait('ready')

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def _wait(self, line, timeout=10):
        deadline = time.monotonic() + timeout
        while line not in self.lines:
            if time.monotonic() > deadline:
                raise AssertionError(f'receiver in {self.vm.name}: no '
                                     f'{line!r} (got {self.lines[-5:]})')
            time.sleep(0.02)

    def _command(self, what):
        self.proc.stdin.write(what + '\n')
        self.proc.stdin.flush()
        self._wait(f'done {what}')
        self.lines.remove(f'done {what}')

    def join(self):
        self._command('join')

    def leave(self):
        self._command('leave')

    def got(self, tag):
        """Sequence numbers received of the stream with this tag."""
        return [int(line.split()[2]) for line in list(self.lines)
                if line.startswith(f'got {tag} ')]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def send(vm, group, tag, count=10, interval=0.02, port=PORT, ttl=4):
    """Send count datagrams to the group from vm (blocks until sent),
    with this TTL (hop limit)."""
    subprocess.run(['ip', 'netns', 'exec', vm.ns, sys.executable, '-c',
                    SENDER, group, str(port), str(count), str(interval),
                    tag, str(ttl)], check=True, timeout=60)


def silent_report(vm, group):
    """An IGMPv2 report for the group from vm, without joining it: the
    VM's kernel will not answer the querier for it."""
    subprocess.run(['ip', 'netns', 'exec', vm.ns, sys.executable, '-c',
                    SILENT_REPORT, group], check=True, timeout=30)
