"""The L2 lab tests' per-test topology of networks, ports and VMs that
cleans up after itself."""
import signal
import subprocess
import time

from dragonflow import errors
from waiting import wait_until


def tcpdump_during(argv, action):
    """(action()'s result, the text tcpdump (argv) printed meanwhile)."""
    capture = subprocess.Popen(argv, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(1)
        result = action()
        time.sleep(0.5)
    finally:
        capture.send_signal(signal.SIGINT)
        out = capture.communicate(timeout=10)[0]
    return result, out


def static_ipv6(vm):
    """Configure the VM's NB IPv6 address on eth0 statically (no DAD);
    vm.ip6 is it (None when its port has none)."""
    vm.ip6 = next((ip for ip in vm.port.ips if ':' in ip), None)
    if vm.ip6:
        vm.run('sysctl', '-qw', 'net.ipv6.conf.eth0.accept_dad=0')
        vm.run('ip', '-6', 'addr', 'add', f'{vm.ip6}/64', 'dev', 'eth0',
               'nodad')
    return vm


def tunnel_capture(lab, action, verbose=False):
    """(action()'s result, what crossed the underlay in Geneve meanwhile
    as tcpdump text; verbose: with the Geneve options decoded)."""
    return tcpdump_during(['tcpdump', '-l', '-nn'] +
                          (['-vv'] if verbose else []) +
                          ['-i', lab.bridge, 'udp port 6081'], action)


class Topology:
    """Creates networks, ports and VMs for one test and removes them."""

    counter = 0

    def __init__(self, lab, nb):
        self.lab = lab
        self.nb = nb
        self.vms = []
        self.networks = []
        self.routers = []
        self.servers = []
        self.groups = []

    def network(self, cidr, network_type='geneve', **kw):
        net = self.nb.create('logical_switch', dict(
            {'name': f'net-{cidr}', 'network_type': network_type}, **kw))
        self.nb.create('subnet', {'network_id': net.id, 'cidr': cidr,
                                  'topic': net.topic})
        self.networks.append(net)
        return net

    def router(self, name, networks, **fields):
        """A router with an interface on the first subnet of each
        network (removed at cleanup)."""
        router = self.nb.create('logical_router', dict(name=name, **fields))
        self.routers.append(router)
        for net in networks:
            subnet = self.nb.list('subnet', network_id=net.id)[0]
            self.nb.create('logical_router_port', {'router_id': router.id,
                                                   'subnet_id': subnet.id})
        return router

    def security_group(self, name, *rules):
        """A security group with these rules (dicts without the group),
        removed at cleanup after the ports."""
        group = self.nb.create('security_group', {'name': name})
        self.groups.append(group)
        for rule in rules:
            self.nb.create('security_group_rule',
                           dict(rule, security_group_id=group.id))
        return group

    def serve(self, vm, port):
        """A TCP server in vm answering with the peer address (stopped at
        cleanup)."""
        self.servers.append(vm.serve_tcp(port))
        return self.servers[-1]

    def vm(self, network, chassis, static_ip=True, **port_fields):
        Topology.counter += 1
        name = f'v{Topology.counter}'
        port = self.nb.create('logical_port', dict(
            {'network_id': network.id, 'name': name}, **port_fields))
        vm = self.lab.add_vm(name, self.lab.chassis[chassis], port,
                             static_ip=static_ip)
        vm.port = port
        vm.ip = port.ips[0]
        self.vms.append(vm)
        return vm

    def trunk_vm(self, network, chassis, **port_fields):
        """A VLAN-aware VM whose port is the parent of a new trunk."""
        Topology.counter += 1
        name = f't{Topology.counter}'
        port = self.nb.create('logical_port', dict(
            {'network_id': network.id, 'name': name}, **port_fields))
        trunk = self.nb.create('trunk', {'port_id': port.id, 'name': name})
        vm = self.lab.add_trunk_vm(name, self.lab.chassis[chassis], port)
        vm.port, vm.ip, vm.trunk = port, port.ips[0], trunk
        self.vms.append(vm)
        return vm

    def subport(self, vm, network, vlan, **port_fields):
        """A subport of vm's trunk on network, and its VM interface."""
        port = self.nb.create('logical_port', dict(
            {'network_id': network.id, 'name': f'{vm.name}.{vlan}'},
            **port_fields))
        segment = self.nb.create('child_port_segmentation', {
            'trunk_id': vm.trunk.id, 'port_id': port.id,
            'segmentation_id': vlan})
        vm.add_subport(vlan, port.macs[0], port.ips[0])
        port.segment = segment
        return port

    def wait_bound(self, vm, timeout=15):
        wait_until(lambda: self.nb.get('logical_port', vm.port_id)
                   .binding_chassis == vm.chassis.name, timeout,
                   message=f'{vm.name} bound')

    def cleanup(self):
        for proc in self.servers:
            proc.kill()
            proc.wait()
        self.servers = []
        for vm in self.vms:
            vm.unplug()
            vm.destroy()
            self.lab.vms.pop(vm.name, None)
        for vm in self.vms:
            trunk = getattr(vm, 'trunk', None)
            if trunk is not None:
                try:
                    self.nb.delete('trunk', trunk.id, cascade=True)
                except errors.NotFound:
                    pass
        for router in self.routers:
            try:
                self.nb.delete('logical_router', router.id, cascade=True)
            except errors.NotFound:
                pass            # the test deleted it
        for net in self.networks:
            self.nb.delete('logical_switch', net.id, cascade=True)
        for group in self.groups:
            try:
                self.nb.delete('security_group', group.id, cascade=True)
            except errors.NotFound:
                pass
        self.vms, self.networks, self.routers = [], [], []
        self.groups = []
