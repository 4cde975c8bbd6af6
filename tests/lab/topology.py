"""The L2 lab tests' per-test topology of networks, ports and VMs that
cleans up after itself."""
from waiting import wait_until


class Topology:
    """Creates networks, ports and VMs for one test and removes them."""

    counter = 0

    def __init__(self, lab, nb):
        self.lab = lab
        self.nb = nb
        self.vms = []
        self.networks = []

    def network(self, cidr, network_type='geneve', **kw):
        net = self.nb.create('logical_switch', dict(
            {'name': f'net-{cidr}', 'network_type': network_type}, **kw))
        self.nb.create('subnet', {'network_id': net.id, 'cidr': cidr})
        self.networks.append(net)
        return net

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

    def wait_bound(self, vm, timeout=15):
        wait_until(lambda: self.nb.get('logical_port', vm.port_id)
                   .binding_chassis == vm.chassis.name, timeout,
                   message=f'{vm.name} bound')

    def cleanup(self):
        for vm in self.vms:
            vm.unplug()
            vm.destroy()
            self.lab.vms.pop(vm.name, None)
        for net in self.networks:
            self.nb.delete('logical_switch', net.id, cascade=True)
        self.vms, self.networks = [], []
