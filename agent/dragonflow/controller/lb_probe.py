"""The health-check prober: one process per (chassis, network), in a
network namespace of its own (the agent starts it with ``unshare --net``)
whose one interface is the chassis' health-check port on that network.
Probes are real connections from that address, through the pipeline, to
members on this chassis only (``controller/lb_health.py``).

Plain Python, no eventlet. Protocol: JSON lines on stdin, answers on
stdout. ``{"op": "setup", "ifname", "mac", "cidr", "mtu"}`` names the
interface ``eth0`` and addresses it (answer ``{"op": "ready"}`` or
``{"op": "error", "detail"}``); ``{"op": "probe", "id", "type", "address",
"port", "timeout", ...}`` runs one probe in a thread (answer ``{"op":
"result", "id", "ok", "detail"}``). The process, its namespace and the
interface in it end when stdin closes (the agent stopped).

Probe meanings (Octavia's): TCP connects and resets (SO_LINGER 0): a
SYN-ACK is up, a reset or a timeout down; HTTP sends a real request and
checks the status against ``expected_codes`` (``200``, ``200,202``,
``200-204``); PING sends one ICMP echo; UDP-CONNECT sends a datagram and
is down only when an ICMP port unreachable comes back.
"""
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

ICMP_ECHO, ICMP_ECHO_REPLY = 8, 0


def codes(expected):
    """The set of HTTP codes ``expected_codes`` allows."""
    out = set()
    for part in expected.split(','):
        low, _, high = part.partition('-')
        out.update(range(int(low), int(high or low) + 1))
    return out


def probe_tcp(req):
    sock = socket.create_connection((req['address'], req['port']),
                                    timeout=req['timeout'])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack('ii', 1, 0))
    sock.close()
    return True, 'connected'


def probe_http(req):
    conn = http.client.HTTPConnection(req['address'], req['port'],
                                      timeout=req['timeout'])
    try:
        conn.request(req.get('http_method', 'GET'), req.get('url_path', '/'))
        status = conn.getresponse().status
    finally:
        conn.close()
    ok = status in codes(req.get('expected_codes', '200'))
    return ok, f'HTTP {status}'


def _checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack(f'!{len(data) // 2}H', data))
    total = (total >> 16) + (total & 0xffff)
    total += total >> 16
    return ~total & 0xffff


def probe_ping(req):
    ident = os.getpid() & 0xffff
    seq = threading.get_ident() & 0xffff
    header = struct.pack('!BBHHH', ICMP_ECHO, 0, 0, ident, seq)
    payload = b'dragonflow-health'
    packet = struct.pack('!BBHHH', ICMP_ECHO, 0,
                         _checksum(header + payload), ident, seq) + payload
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW,
                         socket.IPPROTO_ICMP)
    try:
        sock.settimeout(req['timeout'])
        sock.sendto(packet, (req['address'], 0))
        deadline = time.monotonic() + req['timeout']
        while time.monotonic() < deadline:
            data, peer = sock.recvfrom(2048)
            icmp = data[(data[0] & 0x0f) * 4:]
            kind, _, _, rid, rseq = struct.unpack('!BBHHH', icmp[:8])
            if peer[0] == req['address'] and kind == ICMP_ECHO_REPLY and \
                    (rid, rseq) == (ident, seq):
                return True, 'echo reply'
            sock.settimeout(max(0.01, deadline - time.monotonic()))
    finally:
        sock.close()
    return False, 'no echo reply'


def probe_udp(req):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(req['timeout'])
        sock.connect((req['address'], req['port']))
        sock.send(b'dragonflow-health')
        try:
            sock.recv(2048)
            return True, 'answered'
        except socket.timeout:
            return True, 'no port unreachable'
    finally:
        sock.close()


PROBES = {'TCP': probe_tcp, 'HTTP': probe_http, 'PING': probe_ping,
          'UDP-CONNECT': probe_udp}


class Prober:
    def __init__(self, out=sys.stdout):
        self.out = out
        self.lock = threading.Lock()

    def answer(self, **fields):
        with self.lock:
            self.out.write(json.dumps(fields) + '\n')
            self.out.flush()

    def setup(self, req):
        ifname = req['ifname']
        steps = [
            ['ip', 'link', 'set', 'lo', 'up'],
            ['ip', 'link', 'set', ifname, 'name', 'eth0'],
            ['ip', 'link', 'set', 'eth0', 'address', req['mac'], 'mtu',
             str(req.get('mtu') or 1450), 'up'],
            ['ip', 'addr', 'replace', req['cidr'], 'dev', 'eth0'],
        ]
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                return self.answer(op='error', detail=f'{" ".join(cmd)}: '
                                   f'{proc.stderr.strip()}')
        # The userspace datapath does not complete checksums a veth left
        # to offload (best effort: ethtool may be missing).
        try:
            subprocess.run(['ethtool', '-K', 'eth0', 'tx', 'off'],
                           capture_output=True)
        except OSError:
            pass
        self.answer(op='ready')

    def probe(self, req):
        try:
            ok, detail = PROBES[req['type']](req)
        except socket.timeout:
            ok, detail = False, 'timed out'
        except ConnectionRefusedError:
            ok, detail = False, ('port unreachable'
                                 if req['type'] == 'UDP-CONNECT'
                                 else 'connection refused')
        except (OSError, http.client.HTTPException, ValueError) as e:
            ok, detail = False, f'{type(e).__name__}: {e}'
        self.answer(op='result', id=req['id'], ok=ok, detail=detail)

    def run(self, stream=sys.stdin):
        for line in stream:
            try:
                req = json.loads(line)
            except ValueError:
                continue
            if req.get('op') == 'setup':
                self.setup(req)
            elif req.get('op') == 'probe' and req.get('type') in PROBES:
                threading.Thread(target=self.probe, args=(req,),
                                 daemon=True).start()


def main():
    Prober().run()


if __name__ == '__main__':
    main()
