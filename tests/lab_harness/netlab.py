"""A multi-chassis lab on one machine, with real parts only.

- an underlay: a Linux bridge in the root namespace (the physical switch),
  which also gets an address so tools in the root namespace reach the lab;
- ZooKeeper in its own namespace on the underlay;
- N chassis, each a namespace with its own ovsdb-server and ovs-vswitchd
  (userspace datapath), a ``br-phy`` bridge holding its underlay address,
  and its own ``df-local-controller`` process;
- VMs: namespaces with a veth whose other end is on their chassis'
  ``br-int`` with ``external_ids:iface-id`` = the logical port id;
- a provider network segment: a "physical switch" (a namespace with its
  own userspace OVS bridge in NORMAL mode, since this kernel has no VLAN
  module) with a trunk port to every chassis' ``br-ex`` (``bridge_mappings
  = physnet1:br-ex``) and access ports for "external" hosts (namespaces).

Everything is created with names derived from a short lab prefix and
stopped by PID; ``destroy()`` removes exactly what was created.
"""
import collections
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from lab_harness import zookeeper

# The agent's sources (this harness lives in tests/, beside agent/).
AGENT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'agent')
PHYSNET = 'physnet1'          # the lab's provider network
# The external network on it: the upstream router (an External host) is
# its gateway; chassis n (underlay .n) has external address .100+n.
EXTERNAL_CIDR = '172.24.4.0/24'
EXTERNAL_GATEWAY = '172.24.4.1'
OVS_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema'
DHCP_SCRIPT = """#!/bin/sh
# udhcpc event script for lab VMs: apply the lease to the interface.
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    echo "$ip" > "$LEASE_FILE"
    ;;
esac
exit 0
"""


def sh(*cmd, ns=None, env=None, check=True, capture=True, timeout=60):
    """Run a command (in a namespace); returns stdout."""
    argv = (['ip', 'netns', 'exec', ns] if ns else []) + [str(c) for c in cmd]
    proc = subprocess.run(argv, env=env, text=True, timeout=timeout,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)
    if check and proc.returncode != 0:
        raise RuntimeError(f'{" ".join(argv)} failed ({proc.returncode}): '
                           f'{(proc.stderr or "").strip()}')
    return proc.stdout or ''


def _pid_alive(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('State:'):
                    return 'Z' not in line.split()[1]
    except FileNotFoundError:
        return False
    return False


def read_pidfile(path, timeout=10):
    """The pid a daemon wrote to path. A daemon may create the file before
    it forks and write the pid only from the child (BIRD does), so an empty
    file right after the command returned means: not written yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                text = f.read().strip()
        except FileNotFoundError:
            text = ''
        if text:
            return int(text)
        if time.monotonic() >= deadline:
            raise RuntimeError(f'{path}: no pid written within {timeout} s')
        time.sleep(0.05)


def kill_pid(pid, sig=signal.SIGTERM, timeout=10):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Chassis:
    def __init__(self, lab, name, ip):
        self.lab = lab
        self.name = name
        self.ip = ip
        self.ns = f'{lab.prefix}-{name}'
        self.dir = os.path.join(lab.dir, name)
        self.controller_pid = None
        # The central host (ZooKeeper) as this chassis reaches it.
        self.central_ip = lab.zk_ip

    @property
    def zk_address(self):
        return f'{self.central_ip}:2181'

    @property
    def external_ip(self):
        """This chassis' address on the lab's external network."""
        last = int(ipaddress.ip_address(self.ip)) & 0xff
        net = ipaddress.ip_network(EXTERNAL_CIDR)
        return str(net.network_address + 100 + last)

    @property
    def env(self):
        return dict(os.environ, OVS_RUNDIR=self.dir, OVS_DBDIR=self.dir,
                    OVS_LOGDIR=self.dir)

    def vsctl(self, *args, check=True):
        return sh('ovs-vsctl', f'--db=unix:{self.dir}/db.sock', '--timeout=10',
                  *args, env=self.env, check=check)

    def dfctl_command(self, *args):
        """(argv, env) of dfctl as an operator runs it on this chassis:
        in its namespace, with its configuration (for commands that act
        on the chassis: tap capture, cni gc)."""
        return (['ip', 'netns', 'exec', self.ns, sys.executable, '-m',
                 'dragonflow.cli.dfctl', '--config-file',
                 os.path.join(self.dir, 'dragonflow.ini'), *args],
                dict(os.environ, PYTHONPATH=AGENT_DIR))

    def dfctl(self, *args):
        """Run dfctl on this chassis; its output (AssertionError with its
        stderr when it fails)."""
        argv, env = self.dfctl_command(*args)
        proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def ofctl(self, *args, timeout=60):
        return sh('ovs-ofctl', '-O', 'OpenFlow13', *args, ns=self.ns,
                  env=self.env, timeout=timeout)

    def appctl(self, *args):
        return sh('ovs-appctl', '-t', f'{self.dir}/ovs-vswitchd.ctl', *args,
                  env=self.env)

    def start_vswitchd(self):
        sh('ovs-vswitchd', f'unix:{self.dir}/db.sock',
           f'--pidfile={self.dir}/ovs-vswitchd.pid',
           f'--log-file={self.dir}/ovs-vswitchd.log',
           f'--unixctl={self.dir}/ovs-vswitchd.ctl', '--detach', ns=self.ns,
           env=self.env)

    def restart_vswitchd(self):
        """Kill ovs-vswitchd (flows are lost with it) and start it again."""
        kill_pid(read_pidfile(os.path.join(self.dir, 'ovs-vswitchd.pid')),
                 signal.SIGKILL)
        self.start_vswitchd()

    def _start_ovs(self):
        """The namespace, its own ovsdb-server and ovs-vswitchd."""
        self.destroy()
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        sh('ip', 'netns', 'add', self.ns)
        sh('ip', 'link', 'set', 'lo', 'up', ns=self.ns)
        sh('ovsdb-tool', 'create', f'{self.dir}/conf.db', OVS_SCHEMA)
        sh('ovsdb-server', f'{self.dir}/conf.db',
           f'--remote=punix:{self.dir}/db.sock',
           f'--pidfile={self.dir}/ovsdb-server.pid',
           f'--log-file={self.dir}/ovsdb-server.log',
           f'--unixctl={self.dir}/ovsdb-server.ctl', '--detach', ns=self.ns,
           env=self.env)
        self.vsctl('--no-wait', 'init', '--', 'set', 'Open_vSwitch', '.',
                   f'external_ids:system-id={self.name}')
        self.start_vswitchd()

    def create(self):
        lab = self.lab
        self._start_ovs()
        root_end = f'{lab.prefix}{self.name}'[:15]
        sh('ip', 'link', 'add', root_end, 'mtu', '1600', 'type', 'veth',
           'peer', 'name', 'ul0', 'mtu', '1600', 'netns', self.ns)
        sh('ip', 'link', 'set', root_end, 'master', lab.bridge, 'up')
        sh('ip', 'link', 'set', 'ul0', 'up', ns=self.ns)
        sh('sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1', ns=self.ns)
        self.vsctl('add-br', 'br-phy', '--', 'set', 'Bridge', 'br-phy',
                   'datapath_type=netdev', '--', 'add-port', 'br-phy', 'ul0',
                   '--', 'set', 'Interface', 'ul0', 'mtu_request=1600')
        sh('ip', 'addr', 'add', f'{self.ip}/{lab.underlay.prefixlen}', 'dev',
           'br-phy', ns=self.ns)
        sh('ip', 'link', 'set', 'br-phy', 'up', ns=self.ns)
        sh('ethtool', '-K', 'br-phy', 'tx', 'off', ns=self.ns)
        # The provider network uplink: br-ex, trunked to the switch.
        lab.switch.plug(self.ns, 'px0', self.name)
        self.vsctl('add-br', 'br-ex', '--', 'set', 'Bridge', 'br-ex',
                   'datapath_type=netdev', '--', 'add-port', 'br-ex', 'px0')
        return self

    def write_config(self, extra=None, sections=None):
        """The agent's config: [df] options (updated by extra) and other
        sections ({section: {option: value}})."""
        options = {
            'remote_db_hosts': self.zk_address,
            'local_ip': self.ip,
            'datapath_type': 'netdev',
            'ovsdb_connection': f'unix:{self.dir}/db.sock',
            'vswitchd_unixctl': f'{self.dir}/ovs-vswitchd.ctl',
            'chassis_id': self.name,
            'host': self.name,
            'report_interval': '5',
            'zk_session_timeout': '6',
            'external_host_ip': self.external_ip,
        }
        options.update(extra or {})
        groups = {'df': options, 'df_provider_networks': {
            'bridge_mappings': f'{PHYSNET}:br-ex'}}
        groups.update(sections or {})
        path = os.path.join(self.dir, 'dragonflow.ini')
        with open(path, 'w') as f:
            for group, values in groups.items():
                f.write(f'[{group}]\n' + ''.join(
                    f'{k} = {v}\n' for k, v in values.items()))
        return path

    def start_controller(self, extra_config=None):
        config = self.write_config(extra_config)
        log = open(os.path.join(self.dir, 'controller.log'), 'ab')
        # Where this agent's log starts: wait_connected reads from here, so
        # it waits for this agent's connection, not its predecessor's.
        self._log_start = log.seek(0, os.SEEK_END)
        env = dict(self.env, PYTHONPATH=AGENT_DIR)
        proc = subprocess.Popen(
            ['ip', 'netns', 'exec', self.ns, sys.executable, '-m',
             'dragonflow.controller.service', '--config-file', config],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True)
        log.close()
        self.controller_pid = proc.pid
        self._controller_proc = proc
        self.lab.save()
        return proc

    def controller_log(self):
        """The log of the agents started on this chassis, as text."""
        with open(os.path.join(self.dir, 'controller.log'), 'rb') as f:
            return f.read().decode(errors='replace')

    def wait_connected(self, timeout=30):
        """Until the agent started last is connected to br-int and has
        installed its first full flow set: its own "full sync done" log
        line, written when the switch answered the barrier behind that
        sync on the new connection. (OVSDB's Controller is_connected is
        no help: vswitchd refreshes it every few seconds, so after a
        restart it may still show the old agent's connection, or not yet
        the new one.)"""
        deadline = time.monotonic() + timeout
        log = os.path.join(self.dir, 'controller.log')
        seen = b''
        with open(log, 'rb') as f:
            f.seek(getattr(self, '_log_start', 0))
            while time.monotonic() < deadline:
                seen = seen[-64:] + f.read()
                if b'full sync done' in seen:
                    return self
                if self.controller_pid and \
                        not _pid_alive(self.controller_pid):
                    break
                time.sleep(0.05)
        raise RuntimeError(f'{self.name}: controller not connected; see '
                           f'{log}')

    def stop_controller(self, sig=signal.SIGTERM):
        if self.controller_pid:
            kill_pid(self.controller_pid, sig)
            proc = getattr(self, '_controller_proc', None)
            if proc is not None:
                proc.wait(timeout=10)
            self.controller_pid = None
            self.lab.save()

    def flow_count(self, bridge='br-int'):
        out = self.ofctl('dump-aggregate', bridge)
        return int(out.split('flow_count=')[1].split()[0])

    def probe_drops(self):
        """How often vswitchd dropped its controller for not answering
        its inactivity probe (lines in its log)."""
        with open(os.path.join(self.dir, 'ovs-vswitchd.log')) as f:
            return sum('inactivity probe' in line for line in f)

    def plug_internal(self, names_ids, batch=200):
        """Internal interfaces on br-int as local ports ((name, logical
        port id) pairs), batch of them per ovs-vsctl call."""
        self._vsctl_batches([
            ('add-port', 'br-int', name, '--', 'set', 'Interface', name,
             'type=internal', f'external_ids:iface-id={port_id}')
            for name, port_id in names_ids], batch)

    def unplug_all(self, names, batch=200):
        self._vsctl_batches([('--if-exists', 'del-port', 'br-int', name)
                             for name in names], batch)

    def _vsctl_batches(self, commands, batch):
        for start in range(0, len(commands), batch):
            args = []
            for command in commands[start:start + batch]:
                args += ['--', *command]
            self.vsctl(*args)

    def flows(self, bridge='br-int'):
        """Flow lines without counters, sorted, for comparisons."""
        out = []
        for line in self.ofctl('dump-flows', bridge,
                               '--no-stats').splitlines():
            line = line.strip()
            if not line or line.startswith('OFPST') or 'reply' in line:
                continue
            out.append(line)
        return sorted(out)

    def destroy(self):
        self.stop_controller()
        for daemon in ('ovs-vswitchd', 'ovsdb-server'):
            pidfile = os.path.join(self.dir, f'{daemon}.pid')
            try:
                with open(pidfile) as f:
                    kill_pid(int(f.read().strip()))
            except (FileNotFoundError, ValueError):
                pass
        sh('ip', 'link', 'del', f'{self.lab.prefix}{self.name}'[:15],
           check=False)
        sh('ip', 'netns', 'del', self.ns, check=False)

    def to_dict(self):
        return {'name': self.name, 'ip': self.ip,
                'controller_pid': self.controller_pid}


class Vm:
    def __init__(self, lab, name, chassis, port_id, mac):
        self.lab = lab
        self.name = name
        self.chassis = chassis
        self.port_id = port_id
        self.mac = mac
        self.ns = f'{lab.prefix}-{name}'
        self.tap = f'tap{name}'[:15]

    def create(self, ip=None, prefixlen=24):
        self.destroy()
        sh('ip', 'netns', 'add', self.ns)
        sh('ip', 'link', 'set', 'lo', 'up', ns=self.ns)
        self._veth()
        if ip:
            sh('ip', 'addr', 'add', f'{ip}/{prefixlen}', 'dev', 'eth0',
               ns=self.ns)
        return self

    def _veth(self):
        tmp = f'{self.lab.prefix}t{self.name}'[:15]
        sh('ip', 'link', 'add', tmp, 'type', 'veth', 'peer', 'name',
           self.tap)
        sh('ip', 'link', 'set', tmp, 'netns', self.ns)
        sh('ip', 'link', 'set', self.tap, 'netns', self.chassis.ns)
        sh('ip', 'link', 'set', tmp, 'name', 'eth0', ns=self.ns)
        sh('ip', 'link', 'set', 'eth0', 'address', self.mac, 'mtu', '1450',
           'up', ns=self.ns)
        sh('ethtool', '-K', 'eth0', 'tx', 'off', ns=self.ns)
        sh('sysctl', '-qw', 'net.ipv4.neigh.eth0.retrans_time_ms=100',
           ns=self.ns)
        sh('ip', 'link', 'set', self.tap, 'up', ns=self.chassis.ns)

    def plug(self):
        self.chassis.vsctl('add-port', 'br-int', self.tap, '--', 'set',
                           'Interface', self.tap,
                           f'external_ids:iface-id={self.port_id}')

    def unplug(self):
        self.chassis.vsctl('--if-exists', 'del-port', 'br-int', self.tap)

    def run(self, *cmd, check=True, timeout=60):
        return sh(*cmd, ns=self.ns, check=check, timeout=timeout)

    def ping(self, ip, count=1, timeout=1, interval=None, interface=None):
        args = ['ping', '-c', count, '-W', timeout]
        if interval:
            args += ['-i', interval]
        if interface:
            args += ['-I', interface]
        proc = subprocess.run(['ip', 'netns', 'exec', self.ns, *map(str, args),
                               ip], capture_output=True, text=True,
                              timeout=count * (timeout + 1) + 30)
        return proc.returncode == 0

    def enable_forwarding(self):
        """Make the VM a router (a service function): forward, without
        redirects or reverse-path filtering."""
        for key in ('net.ipv4.ip_forward=1',
                    'net.ipv4.conf.all.send_redirects=0',
                    'net.ipv4.conf.eth0.send_redirects=0',
                    'net.ipv4.conf.all.rp_filter=0',
                    'net.ipv4.conf.eth0.rp_filter=0'):
            self.run('sysctl', '-qw', key)

    def forwarded(self):
        """Packets the VM's kernel has forwarded (Ip: ForwDatagrams)."""
        lines = [line.split() for line in self.run('cat', '/proc/net/snmp')
                 .splitlines() if line.startswith('Ip:')]
        return int(lines[1][lines[0].index('ForwDatagrams')])

    def serve_named(self, name, port):
        """A server answering every TCP connection and UDP datagram on
        port with name (what load balancer tests count); returns the
        process (the caller stops it)."""
        return subprocess.Popen(
            ['ip', 'netns', 'exec', self.ns, sys.executable, '-c',
             NAMED_SERVER, name, str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def connections(self, ip, port, count, proto='tcp'):
        """Counter of the answers to count new connections (or UDP
        datagrams from new sockets) from the VM to ip:port ('failed' for
        those that got none)."""
        proc = subprocess.run(
            ['ip', 'netns', 'exec', self.ns, sys.executable, '-c',
             CONNECT_MANY, ip, str(port), str(count), proto],
            capture_output=True, text=True, timeout=count * 5 + 30,
            check=True)
        return collections.Counter(json.loads(proc.stdout))

    def serve_tcp(self, port):
        """Start a TCP server in the VM that answers every connection with
        the peer address it sees (what NAT tests need); returns the
        process (the caller stops it)."""
        return subprocess.Popen(
            ['ip', 'netns', 'exec', self.ns, sys.executable, '-c',
             TCP_ECHO_PEER, str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def connect_tcp(self, ip, port, timeout=2):
        """Connect from the VM; the server's answer, or None."""
        proc = subprocess.run(
            ['ip', 'netns', 'exec', self.ns, sys.executable, '-c',
             TCP_CONNECT, ip, str(port), str(timeout)],
            capture_output=True, text=True, timeout=timeout + 30)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def dhcp(self, timeout=10, interface='eth0'):
        """Run udhcpc on a VM interface; returns the leased IP or None."""
        script = os.path.join(self.lab.dir, 'udhcpc.script')
        if not os.path.exists(script):
            with open(script, 'w') as f:
                f.write(DHCP_SCRIPT)
            os.chmod(script, 0o755)
        lease = os.path.join(self.lab.dir, f'{self.name}.lease')
        if os.path.exists(lease):
            os.unlink(lease)
        env = dict(os.environ, LEASE_FILE=lease)
        subprocess.run(['ip', 'netns', 'exec', self.ns, 'busybox', 'udhcpc',
                        '-i', interface, '-n', '-q', '-f', '-t', str(timeout),
                        '-T', '1', '-s', script], env=env,
                       capture_output=True, text=True, timeout=timeout + 30)
        try:
            with open(lease) as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def destroy(self):
        sh('ip', 'netns', 'del', self.ns, check=False)

    def to_dict(self):
        return {'name': self.name, 'chassis': self.chassis.name,
                'port_id': self.port_id, 'mac': self.mac}


class ProviderSwitch(Chassis):
    """The provider segment's physical switch: a NORMAL-mode OVS bridge
    ``br-sw``; chassis uplinks are trunk ports, hosts get access ports."""

    def __init__(self, lab):
        super().__init__(lab, 'sw', None)

    def create(self):
        self._start_ovs()
        self.vsctl('add-br', 'br-sw', '--', 'set', 'Bridge', 'br-sw',
                   'datapath_type=netdev')
        return self

    def plug(self, ns, ifname, port, tag=None):
        """A veth from namespace ns (ifname) to switch port ``port``
        (trunk, or access port of VLAN tag; tag 0 = untagged only)."""
        self.unplug(port)
        sh('ip', 'link', 'add', port, 'netns', self.ns, 'type', 'veth',
           'peer', 'name', ifname, 'netns', ns)
        for where, dev in ((self.ns, port), (ns, ifname)):
            sh('ip', 'link', 'set', dev, 'up', ns=where)
            sh('ethtool', '-K', dev, 'tx', 'off', ns=where)
        extra = ['--', 'set', 'Port', port, f'tag={tag}'] \
            if tag is not None else []
        self.vsctl('--may-exist', 'add-port', 'br-sw', port, *extra)

    def unplug(self, port):
        """Remove the port and its veth now: a namespace deleted with
        the other end takes its links down only when the kernel gets to
        it, or never while a process still holds that namespace, and a
        host made again under the same name would find the old one."""
        self.vsctl('--if-exists', 'del-port', 'br-sw', port)
        sh('ip', 'link', 'del', port, ns=self.ns, check=False)


class TrunkVm(Vm):
    """A VLAN-aware VM. This kernel has no 8021q module, so the VM's VLAN
    driver is a small NORMAL bridge on the chassis: the trunk parent's
    interface on br-int is a patch to it, the VM's eth0 is its untagged
    port, and each eth<vlan> its access port of that VLAN (the subport)."""

    def __init__(self, lab, name, chassis, port_id, mac):
        super().__init__(lab, name, chassis, port_id, mac)
        self.bridge = f'bt{name}'[:15]
        self.patch = f'tp{name}'[:15]
        self.peer = f'tq{name}'[:15]

    def _veth(self):
        self.chassis.vsctl('--may-exist', 'add-br', self.bridge, '--', 'set',
                           'Bridge', self.bridge, 'datapath_type=netdev')
        self._link('eth0', self.mac, f'tu{self.name}'[:15], 0)

    def _link(self, ifname, mac, port, tag):
        sh('ip', 'link', 'add', ifname, 'netns', self.ns, 'type', 'veth',
           'peer', 'name', port, 'netns', self.chassis.ns)
        sh('ip', 'link', 'set', ifname, 'address', mac, 'mtu', '1450', 'up',
           ns=self.ns)
        sh('ip', 'link', 'set', port, 'up', ns=self.chassis.ns)
        for where, dev in ((self.ns, ifname), (self.chassis.ns, port)):
            sh('ethtool', '-K', dev, 'tx', 'off', ns=where)
        sh('sysctl', '-qw', f'net.ipv4.neigh.{ifname}.retrans_time_ms=100',
           ns=self.ns)
        self.chassis.vsctl('add-port', self.bridge, port, '--', 'set', 'Port',
                           port, f'tag={tag}')

    def add_subport(self, vlan, mac, ip, prefixlen=24):
        """The VM side of a subport: interface eth<vlan>."""
        self._link(f'eth{vlan}', mac, f'tv{self.name}{vlan}'[:15], vlan)
        sh('ip', 'addr', 'add', f'{ip}/{prefixlen}', 'dev', f'eth{vlan}',
           ns=self.ns)

    def plug(self):
        self.chassis.vsctl(
            'add-port', 'br-int', self.patch, '--', 'set', 'Interface',
            self.patch, 'type=patch', f'options:peer={self.peer}',
            f'external_ids:iface-id={self.port_id}', '--', 'add-port',
            self.bridge, self.peer, '--', 'set', 'Interface', self.peer,
            'type=patch', f'options:peer={self.patch}')

    def unplug(self):
        self.chassis.vsctl('--if-exists', 'del-port', 'br-int', self.patch)

    def destroy(self):
        super().destroy()
        if os.path.exists(os.path.join(self.chassis.dir, 'db.sock')):
            self.chassis.vsctl('--if-exists', 'del-br', self.bridge,
                               check=False)


class External(Vm):
    """A host on the provider network segment (outside every chassis);
    VLAN networks reach it through a VLAN subinterface."""

    def __init__(self, lab, name):
        super().__init__(lab, name, None, None, None)
        self.switch_ports = []

    def _plug(self, ifname, port, tag):
        self.lab.switch.plug(self.ns, ifname, port, tag=tag)
        self.switch_ports.append(port)

    def _veth(self):
        self._plug('eth0', f'{self.name}0', 0)
        # Answer ARP only on the interface (VLAN) holding the address.
        sh('sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1', ns=self.ns)

    def add_address(self, cidr, vlan=None):
        """An address on eth0 (untagged), or on interface eth<vlan>
        plugged into an access port of that VLAN."""
        dev = 'eth0'
        if vlan is not None:
            dev = f'eth{vlan}'
            if sh('ip', 'link', 'show', dev, ns=self.ns,
                  check=False) == '':
                self._plug(dev, f'{self.name}{vlan}', vlan)
        sh('ip', 'addr', 'replace', cidr, 'dev', dev, ns=self.ns)

    def destroy(self):
        if self.lab.switch.dir and os.path.exists(
                os.path.join(self.lab.switch.dir, 'db.sock')):
            for port in self.switch_ports:
                self.lab.switch.unplug(port)
        self.switch_ports = []
        super().destroy()

    def to_dict(self):
        return {'name': self.name, 'external': True}


TCP_ECHO_PEER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('', int(sys.argv[1])))
s.listen(16)
while True:
    c, peer = s.accept()
    c.sendall(peer[0].encode() + b'\\n')
    c.close()
"""

NAMED_SERVER = """
import socket, sys, threading
name, port = sys.argv[1].encode(), int(sys.argv[2])
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(('', port))
    while True:
        _, peer = u.recvfrom(2048)
        u.sendto(name, peer)
threading.Thread(target=udp, daemon=True).start()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('', port))
s.listen(128)
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        c.sendall(name)
        c.recv(1)   # the client closes first: TIME_WAIT stays on its side
    except OSError:
        pass        # a health check that connected and reset
    c.close()
"""

CONNECT_MANY = """
import collections, json, socket, sys
ip, port, count, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \\
    sys.argv[4]
seen = collections.Counter()
for _ in range(count):
    try:
        if proto == 'tcp':
            s = socket.create_connection((ip, port), timeout=2)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(2)
            s.sendto(b'?', (ip, port))
        seen[s.recv(100).decode() or 'empty'] += 1
        s.close()
    except OSError:
        seen['failed'] += 1
print(json.dumps(seen))
"""

TCP_CONNECT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])),
                             timeout=float(sys.argv[3]))
print(c.recv(100).decode().strip())
"""


class NetLab:
    """The lab; ``prefix`` keeps names of concurrent labs apart.

    With ``management``, each chassis reaches the central host (ZooKeeper,
    OVN's databases) over a link of its own, not over the tunnel underlay:
    on the underlay, a chassis' host traffic crosses its userspace
    datapath (``br-phy``, polled by vswitchd's main thread), and the burst
    of an agent's first NB read (a few hundred kB in ~50 ms) made it drop
    tunnel packets arriving meanwhile, which the restart benchmarks
    counted as the agent's. A kernel datapath, or a separate management
    network, keeps the two apart on a real node."""

    def __init__(self, directory, prefix='dfl', underlay='172.30.0.0/24',
                 management=False):
        self.dir = os.path.abspath(directory)
        self.prefix = prefix
        self.management = management
        self.underlay = ipaddress.ip_network(underlay)
        hosts = list(self.underlay.hosts())
        self.host_ip = str(hosts[-1])              # root namespace
        self.zk_ip = str(hosts[99])                # .100
        self.bridge = f'{prefix}-ul'[:15]
        self.switch = ProviderSwitch(self)
        self.zk_ns = f'{prefix}-zk'
        self.zk = None
        self.chassis = {}
        self.vms = {}
        self.pids = {}      # other processes started in the lab, by name
        self.extra_ns = {}  # other namespaces -> their root-side link

    @property
    def zk_address(self):
        return f'{self.zk_ip}:2181'

    def chassis_ip(self, index):
        return str(list(self.underlay.hosts())[index])

    def save(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, 'netlab.json'), 'w') as f:
            json.dump({'prefix': self.prefix, 'underlay': str(self.underlay),
                       'zk_pid': self.zk.proc.pid if self.zk else None,
                       'chassis': [c.to_dict() for c in self.chassis.values()],
                       'vms': [v.to_dict() for v in self.vms.values()],
                       'pids': self.pids, 'extra_ns': self.extra_ns},
                      f, indent=2)

    def create(self):
        self.destroy_stale()
        os.makedirs(self.dir, exist_ok=True)
        sh('ip', 'link', 'add', self.bridge, 'mtu', '1600', 'type', 'bridge')
        sh('ip', 'addr', 'add', f'{self.host_ip}/{self.underlay.prefixlen}',
           'dev', self.bridge)
        sh('ip', 'link', 'set', self.bridge, 'up')
        self.switch.create()
        sh('ip', 'netns', 'add', self.zk_ns)
        sh('ip', 'link', 'set', 'lo', 'up', ns=self.zk_ns)
        root_end = f'{self.prefix}zk'[:15]
        sh('ip', 'link', 'add', root_end, 'mtu', '1600', 'type', 'veth',
           'peer', 'name', 'ul0', 'netns', self.zk_ns)
        sh('ip', 'link', 'set', root_end, 'master', self.bridge, 'up')
        sh('ethtool', '-K', root_end, 'tx', 'off')
        sh('ip', 'addr', 'add', f'{self.zk_ip}/{self.underlay.prefixlen}',
           'dev', 'ul0', ns=self.zk_ns)
        sh('ip', 'link', 'set', 'ul0', 'up', ns=self.zk_ns)
        sh('ethtool', '-K', 'ul0', 'tx', 'off', ns=self.zk_ns)
        shutil.rmtree(os.path.join(self.dir, 'zookeeper'), ignore_errors=True)
        self.zk = zookeeper.ZkServer(
            os.path.join(self.dir, 'zookeeper'), host=self.zk_ip, port=2181,
            netns=self.zk_ns, extra_config={'clientPortAddress': '0.0.0.0'}
            if self.management else None)
        self.zk.start().wait_ready()
        self.save()
        return self

    def add_chassis(self, name):
        index = len(self.chassis) + 1
        chassis = Chassis(self, name, self.chassis_ip(index))
        self.chassis[name] = chassis
        self.save()           # recorded first: a failed create is cleaned
        chassis.create()
        if self.management:
            chassis.central_ip = self._management_link(chassis, index)
        return chassis

    def _management_link(self, chassis, index):
        """A veth from the chassis (mg0) to the central host (mg<index>),
        a /30 of 169.254.<index>.0 (both ends in the lab's namespaces);
        the central host's address on it."""
        central, local = f'169.254.{index}.1', f'169.254.{index}.2'
        peer = f'mg{index}'
        sh('ip', 'link', 'add', 'mg0', 'netns', chassis.ns, 'type', 'veth',
           'peer', 'name', peer, 'netns', self.zk_ns)
        for ns, dev, addr in ((chassis.ns, 'mg0', local),
                              (self.zk_ns, peer, central)):
            sh('ip', 'addr', 'add', f'{addr}/30', 'dev', dev, ns=ns)
            sh('ip', 'link', 'set', dev, 'up', ns=ns)
        return central

    def start_chassis(self, names):
        """Add chassis, start their controllers, wait until each is the
        OpenFlow controller of its br-int."""
        for name in names:
            self.add_chassis(name)
        for name in names:
            self.chassis[name].start_controller()
        for name in names:
            self.chassis[name].wait_connected()
        return self

    def add_vm(self, name, chassis, port, static_ip=True, plug=True):
        """A VM for an NB port (a model object with id, macs, ips)."""
        vm = Vm(self, name, chassis, port.id, port.macs[0])
        self.vms[name] = vm
        self.save()
        vm.create(ip=port.ips[0] if static_ip and port.ips else None)
        if plug:
            vm.plug()
        return vm

    def add_trunk_vm(self, name, chassis, port, static_ip=True):
        """A VLAN-aware VM whose interface is the trunk parent port;
        add_subport() gives it its subports' interfaces."""
        vm = TrunkVm(self, name, chassis, port.id, port.macs[0])
        self.vms[name] = vm
        self.save()
        vm.create(ip=port.ips[0] if static_ip and port.ips else None)
        vm.plug()
        return vm

    def add_external(self, name='ext'):
        """A host on the provider segment; add addresses with
        add_address()."""
        host = External(self, name)
        self.vms[name] = host
        self.save()
        return host.create()

    def track(self, name, pid):
        """Record a process started in the lab (stopped with it)."""
        self.pids[name] = pid
        self.save()

    def untrack(self, name):
        if self.pids.pop(name, None) is not None:
            self.save()

    def track_netns(self, ns, root_link=None):
        """Record a namespace (and its root-side link) made in the lab."""
        self.extra_ns[ns] = root_link
        self.save()

    def remove_netns(self, extra):
        for ns, link in extra.items():
            sh('ip', 'netns', 'del', ns, check=False)
            if link:
                sh('ip', 'link', 'del', link, check=False)

    def destroy(self):
        for pid in self.pids.values():
            kill_pid(pid)
        self.pids.clear()
        self.remove_netns(self.extra_ns)
        self.extra_ns.clear()
        for vm in list(self.vms.values()):
            vm.destroy()
        for chassis in list(self.chassis.values()):
            chassis.destroy()
        self.switch.destroy()
        if self.zk is not None:
            self.zk.kill()
        sh('ip', 'netns', 'del', self.zk_ns, check=False)
        sh('ip', 'link', 'del', f'{self.prefix}zk'[:15], check=False)
        sh('ip', 'link', 'del', self.bridge, check=False)
        self.vms.clear()
        self.chassis.clear()

    def destroy_stale(self):
        """Remove what an earlier run with this directory left behind."""
        try:
            with open(os.path.join(self.dir, 'netlab.json')) as f:
                saved = json.load(f)
        except (FileNotFoundError, ValueError):
            return
        for pid in saved.get('pids', {}).values():
            kill_pid(pid)
        self.remove_netns(saved.get('extra_ns', {}))
        for item in saved.get('vms', []):
            sh('ip', 'netns', 'del', f'{self.prefix}-{item["name"]}',
               check=False)
        for item in saved.get('chassis', []):
            chassis = Chassis(self, item['name'], item['ip'])
            chassis.controller_pid = item.get('controller_pid')
            chassis.destroy()
        if saved.get('zk_pid'):
            kill_pid(saved['zk_pid'])
        sh('ip', 'netns', 'del', self.zk_ns, check=False)
        sh('ip', 'link', 'del', f'{self.prefix}zk'[:15], check=False)
        sh('ip', 'link', 'del', self.bridge, check=False)
        ProviderSwitch(self).destroy()
        os.unlink(os.path.join(self.dir, 'netlab.json'))

    def remove_dir(self):
        shutil.rmtree(self.dir, ignore_errors=True)
