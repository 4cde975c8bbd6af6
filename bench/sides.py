"""The two control planes the scale benchmarks compare, behind one small
interface, each in the same lab (namespaces, one OVS per chassis, the
underlay bridge): our agent with ZooKeeper, and OVN 23.03 from Debian
(``ovn-central`` + ``ovn-host``, installed by ``ensure_ovn``) with its NB
and SB ``ovsdb-server``s and ``ovn-northd`` on the lab's central host and
an ``ovn-controller`` per chassis. Each chassis reaches the central host
over a management link of its own (``NetLab(management=True)``), not over
the tunnel underlay its userspace datapath carries, as a node with a
kernel datapath or a management network would.

A side creates networks and ports in its own northbound (a port is
anything with ``id`` = the ``iface-id`` to plug, ``macs`` and ``ips``),
starts and stops its chassis controller, and tells whether ports are
bound. Flows are counted on the switch the same way for both."""
import contextlib
import ipaddress
import json
import os
import subprocess
import tempfile
import types

from benchlab import wait
from lab_harness.netlab import NetLab, kill_pid, read_pidfile, sh
from dragonflow.nb.api import NbApi
from dragonflow.store import zk

OVN_PACKAGES = ('ovn-central', 'ovn-host')
OVN_SHARE = '/usr/share/ovn'
POLICY_RC = '/usr/sbin/policy-rc.d'


def ensure_ovn():
    """Install OVN from Debian if it is not there, never starting its
    system services (the bench runs its own instances in the lab)."""
    if os.path.exists('/usr/bin/ovn-controller') and os.path.exists(
            os.path.join(OVN_SHARE, 'ovn-nb.ovsschema')):
        return
    made_policy = not os.path.exists(POLICY_RC)
    if made_policy:
        with open(POLICY_RC, 'w') as f:
            f.write('#!/bin/sh\nexit 101\n')
        os.chmod(POLICY_RC, 0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        subprocess.run(['apt-get', 'install', '-y', '-q', *OVN_PACKAGES],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    finally:
        if made_policy:
            os.unlink(POLICY_RC)


def pair_addresses(index, pairs):
    """The allowed address pairs of the index-th port of a world: pairs
    addresses of their own in 10.199.0.0/16."""
    return [f'10.199.{n // 256}.{n % 256}'
            for n in range(index * pairs, (index + 1) * pairs)]


def mac_of(index):
    return '0a:00:%02x:%02x:%02x:%02x' % (
        (index >> 24) & 0xff, (index >> 16) & 0xff, (index >> 8) & 0xff,
        index & 0xff)


def ofports(ch, names):
    """{interface name: ofport} for these names, in one OVSDB read."""
    out = ch.vsctl('--bare', '--columns=name,ofport', 'list', 'Interface')
    values = out.split()
    found = dict(zip(values[0::2], values[1::2]))
    return {n: found.get(n) for n in names}


def classified(ch, names):
    """Whether each of these interfaces has a classification flow (an
    in_port match in table 0) on br-int: the same test for both sides."""
    numbers = ofports(ch, names)
    if not all(n and n.isdigit() and int(n) > 0 for n in numbers.values()):
        return False
    table0 = ch.ofctl('--no-names', 'dump-flows', 'br-int', 'table=0')
    present = {part.split('=')[1] for line in table0.split()
               for part in line.split(',') if part.startswith('in_port=')}
    return all(n in present for n in numbers.values())


class Dragonflow:
    """Our agent on each chassis, ZooKeeper as the NB."""
    name = 'dragonflow'

    def __init__(self, lab):
        self.lab = lab
        self.client = zk.make_client(lab.zk_address)
        self.client.start(timeout=20)
        self.nb = NbApi(self.client)

    def start(self, names):
        for name in names:
            self.lab.chassis[name].start_controller()
        for name in names:
            self.lab.chassis[name].wait_connected()

    def controller_pid(self, ch):
        return ch.controller_pid

    def stop_controller(self, ch):
        ch.stop_controller()

    def start_controller(self, ch):
        ch.start_controller()
        ch.wait_connected(timeout=300)

    def network(self, name, cidr):
        net = self.nb.create('logical_switch', {'name': name})
        self.nb.create('subnet', {'network_id': net.id, 'cidr': cidr})
        return net

    def ports(self, net, count, prefix, groups=(), pairs=0):
        return self.nb.write_many([('create', 'logical_port', {
            'network_id': net.id, 'name': f'{prefix}{i}',
            'security_groups': list(groups),
            'allowed_address_pairs': [
                {'ip_address': a} for a in pair_addresses(i, pairs)]})
            for i in range(count)])

    def port(self, net, name, mac, ip):
        return self.nb.create('logical_port', {
            'id': name, 'network_id': net.id, 'name': name, 'macs': [mac],
            'ips': [ip]})

    def group_world(self, ports, rules, from_group=False, pairs=0):
        """One network, one security group of ``rules`` ingress TCP-port
        rules (from the group's own members: from_group) and egress
        allow-all, ``ports`` ports in it, each with ``pairs`` allowed
        address pairs."""
        group = self.nb.create('security_group', {'name': 'scale'})
        remote = {'remote_group_id': group.id} if from_group else {}
        writes = [('create', 'security_group_rule', {
            'security_group_id': group.id, 'direction': 'egress',
            'ethertype': v}) for v in ('IPv4', 'IPv6')]
        writes += [('create', 'security_group_rule', dict({
            'security_group_id': group.id, 'direction': 'ingress',
            'protocol': 'tcp', 'port_range_min': 2000 + i,
            'port_range_max': 2000 + i}, **remote)) for i in range(rules)]
        self.nb.write_many(writes)
        net = self.network('scale', '10.90.0.0/16')
        return self.ports(net, ports, 's', groups=[group.id], pairs=pairs)

    def delete_port(self, port):
        self.nb.delete('logical_port', port.id)

    def delete_ports(self, ports):
        for port in ports:
            self.delete_port(port)

    def delete_network(self, net):
        self.nb.delete('logical_switch', net.id, cascade=True)

    def bound(self, ports):
        """Whether all these ports are bound: their znodes read in one
        request, one field looked at (as cheap as OVN's listing of one
        column, so the polling, every 20 ms, does not add to our figure:
        validating 200 whole objects per poll did)."""
        found = list(self.nb.store.get_many_raw(
            'logical_port', [p.id for p in ports]))
        return len(found) == len(ports) and all(
            json.loads(data).get('binding_chassis')
            for _, data, _ in found)

    def close(self):
        self.client.stop()
        self.client.close()


class Ovn:
    """OVN: NB and SB ovsdb-servers and ovn-northd in the lab's central
    namespace (where ZooKeeper runs for the other side), ovn-controller
    in each chassis namespace, Geneve between chassis."""
    name = 'ovn'

    def __init__(self, lab):
        self.lab = lab
        self.dir = os.path.join(lab.dir, 'ovn')
        os.makedirs(self.dir, exist_ok=True)
        self.nb_sock = os.path.join(self.dir, 'nb.sock')
        self.sb_sock = os.path.join(self.dir, 'sb.sock')
        self._next = 0
        for db, schema, remotes in (
                ('nb', 'ovn-nb.ovsschema', []),
                ('sb', 'ovn-sb.ovsschema',
                 ['--remote=ptcp:6642'])):
            path = os.path.join(self.dir, f'{db}.db')
            sh('ovsdb-tool', 'create', path, os.path.join(OVN_SHARE, schema))
            self._daemon(f'{db}-ovsdb', 'ovsdb-server', path,
                         f'--remote=punix:{self.dir}/{db}.sock', *remotes)
        self.nbctl('init')
        sh('ovn-sbctl', f'--db=unix:{self.sb_sock}', 'init')
        self._daemon('northd', 'ovn-northd',
                     f'--ovnnb-db=unix:{self.nb_sock}',
                     f'--ovnsb-db=unix:{self.sb_sock}')

    def _daemon(self, name, *cmd, ns=None, directory=None, env=None,
                unixctl=True):
        directory = directory or self.dir
        sh(*cmd, f'--pidfile={directory}/{name}.pid',
           f'--log-file={directory}/{name}.log', '--detach',
           *([f'--unixctl={directory}/{name}.ctl'] if unixctl else []),
           ns=ns or self.lab.zk_ns, env=env)
        pid = read_pidfile(f'{directory}/{name}.pid')
        self.lab.track(f'{directory}/{name}', pid)
        return pid

    def nbctl(self, *args):
        return sh('ovn-nbctl', f'--db=unix:{self.nb_sock}', *args,
                  timeout=300)

    def sbctl(self, *args):
        return sh('ovn-sbctl', f'--db=unix:{self.sb_sock}', *args,
                  timeout=300)

    def start(self, names):
        for name in names:
            ch = self.lab.chassis[name]
            ch.vsctl('set', 'Open_vSwitch', '.',
                     f'external_ids:ovn-remote=tcp:{ch.central_ip}:6642',
                     'external_ids:ovn-encap-type=geneve',
                     f'external_ids:ovn-encap-ip={ch.ip}',
                     'external_ids:ovn-bridge-datapath-type=netdev')
            self.start_controller(ch)

    def controller_pid(self, ch):
        return ch.ovn_controller_pid

    def stop_controller(self, ch):
        name = f'{ch.dir}/ovn-controller'
        kill_pid(ch.ovn_controller_pid)
        self.lab.untrack(name)

    def start_controller(self, ch):
        # ovn-controller 23.03 has no --unixctl: its socket is
        # $OVN_RUNDIR/ovn-controller.<pid>.ctl.
        env = dict(ch.env, OVN_RUNDIR=ch.dir)
        pid = ch.ovn_controller_pid = self._daemon(
            'ovn-controller', 'ovn-controller', f'unix:{ch.dir}/db.sock',
            ns=ch.ns, directory=ch.dir, env=env, unixctl=False)

        def connected():
            out = sh('ovn-appctl', '-t',
                     f'{ch.dir}/ovn-controller.{pid}.ctl',
                     'connection-status', check=False)
            return out.strip() == 'connected'
        if not wait(connected, timeout=60, interval=0.05):
            raise RuntimeError(f'{ch.name}: ovn-controller not connected')

    def network(self, name, cidr):
        self.nbctl('ls-add', name)
        return types.SimpleNamespace(
            id=name, hosts=ipaddress.ip_network(cidr).hosts())

    def _port_commands(self, net, name, mac, ip, extra=()):
        address = ' '.join((mac, ip) + tuple(extra))
        return ['--', 'lsp-add', net.id, name,
                '--', 'lsp-set-addresses', name, address,
                '--', 'lsp-set-port-security', name, address]

    def _new_port(self, net, name):
        self._next += 1
        return types.SimpleNamespace(id=name, macs=[mac_of(self._next)],
                                     ips=[str(next(net.hosts))])

    def ports(self, net, count, prefix, groups=(), pairs=0):
        """count ports in one NB transaction (like our write_many); an
        allowed address pair is one more address of the port (in its
        addresses and port security, so in the port group's address set
        too, as ours)."""
        made = [self._new_port(net, f'{net.id}-{prefix}{i}')
                for i in range(count)]
        args = []
        for i, p in enumerate(made):
            args += self._port_commands(net, p.id, p.macs[0], p.ips[0],
                                        pair_addresses(i, pairs))
        for group in groups:
            args += ['--', 'pg-set-ports', group, *(p.id for p in made)]
        self.nbctl(*args[1:])
        return made

    def port(self, net, name, mac, ip):
        self.nbctl(*self._port_commands(net, name, mac, ip)[1:])
        return types.SimpleNamespace(id=name, macs=[mac], ips=[ip])

    def group_world(self, ports, rules, from_group=False, pairs=0):
        """What Neutron's OVN driver makes of the same security group: a
        port group, allow-related ACLs per rule (from the port group's
        address set: from_group), default drops."""
        group = 'pg_scale'
        source = f' && ip4.src == ${group}_ip4' if from_group else ''
        acls = [('to-lport', 1002, f'outport == @{group} && ip4 && tcp && '
                 f'tcp.dst == {2000 + i}{source}', 'allow-related')
                for i in range(rules)]
        acls += [('from-lport', 1002, f'inport == @{group} && {v}',
                  'allow-related') for v in ('ip4', 'ip6')]
        acls += [(d, 1001, f'{p} == @{group} && ip', 'drop')
                 for d, p in (('to-lport', 'outport'),
                              ('from-lport', 'inport'))]
        args = ['pg-add', group]
        for direction, priority, match, verdict in acls:
            args += ['--', '--type=port-group', 'acl-add', group, direction,
                     str(priority), match, verdict]
        self.nbctl(*args)
        net = self.network('scale', '10.90.0.0/16')
        return self.ports(net, ports, 's', groups=[group], pairs=pairs)

    def delete_port(self, port):
        self.nbctl('lsp-del', port.id)

    def delete_ports(self, ports):
        args = []
        for port in ports:
            args += ['--', 'lsp-del', port.id]
        self.nbctl(*args[1:])

    def delete_network(self, net):
        self.nbctl('ls-del', net.id)

    def bound(self, ports):
        out = self.sbctl('--bare', '--columns=logical_port,chassis',
                         'list', 'Port_Binding')
        records = [r.split() for r in out.strip().split('\n\n')]
        claimed = {r[0] for r in records if len(r) > 1}
        return all(p.id in claimed for p in ports)

    def close(self):
        pass


SIDES = {'dragonflow': Dragonflow, 'ovn': Ovn}


@contextlib.contextmanager
def side_lab(side, prefix, underlay, chassis):
    """A lab whose chassis run side's controllers: yields (lab, side)."""
    lab = NetLab(tempfile.mkdtemp(prefix=f'df-{prefix}-'), prefix=prefix,
                 underlay=underlay, management=True)
    control = None
    try:
        lab.create()
        for name in chassis:
            lab.add_chassis(name)
        control = SIDES[side](lab)
        control.start(chassis)
        yield lab, control
    finally:
        if control is not None:
            control.close()
        lab.destroy()
        lab.remove_dir()
