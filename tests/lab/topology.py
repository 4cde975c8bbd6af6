"""The L2 lab tests' per-test topology of networks, ports and VMs that
cleans up after itself."""
from dragonflow import errors
from waiting import wait_until


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

    def network(self, cidr, network_type='geneve', **kw):
        net = self.nb.create('logical_switch', dict(
            {'name': f'net-{cidr}', 'network_type': network_type}, **kw))
        self.nb.create('subnet', {'network_id': net.id, 'cidr': cidr})
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
        for router in self.routers:
            try:
                self.nb.delete('logical_router', router.id, cascade=True)
            except errors.NotFound:
                pass            # the test deleted it
        for net in self.networks:
            self.nb.delete('logical_switch', net.id, cascade=True)
        self.vms, self.networks, self.routers = [], [], []
