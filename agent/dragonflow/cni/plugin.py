"""``dragonflow-cni``: the commands.

ADD creates the container's NB port on the configured network (id
derived from the container id and interface name, so a repeated ADD or
a DEL finds it without a search; name ``<namespace>/<pod>`` from
``CNI_ARGS`` or ``cni-<container>``; ``device_owner`` ``cni``; the
requested ``IP=``, else one of ``subnet``, else the network's
allocation), plugs it (``wiring``), and waits until the local agent has
bound the port to this chassis and installed its delivery flow, then
announces the addresses (gratuitous ARP: they may have had another
owner a moment ago) and prints the result (interface, addresses with
gateways, routes, DNS from the subnets). If the wait runs out it
answers "try again later" (11) naming what is missing, and, as on any
failure, removes what it made.
DEL removes exactly that (a missing netns, port or interface, and a
repeated DEL, are fine). CHECK verifies the interface, its addresses and
the binding. VERSION prints the supported versions.

Configuration: the network config's ``zookeeper`` (hosts) or
``config_file`` (default ``/etc/dragonflow/dragonflow.ini``: ZooKeeper,
TLS, auth, ``ovsdb_connection``, ``integration_bridge``, ``chassis_id``).
"""
import ipaddress
import json
import os
import subprocess
import sys
import threading
import time
import uuid

from dragonflow import errors
from dragonflow.cni import spec
from dragonflow.cni import wiring
from dragonflow.controller import flowdump

OWNER = 'cni'
PORT_NAMESPACE = uuid.UUID('c5d6f3c2-2b1e-4d7a-9a51-3f0e8b6c7d10')
POLL = 0.01        # first wait for the delivery flow once bound


def port_id(container_id, ifname):
    return str(uuid.uuid5(PORT_NAMESPACE, f'{container_id}/{ifname}'))


def load_conf(config):
    from oslo_config import cfg
    from dragonflow import conf as df_conf
    path = config.get('config_file', spec.DEFAULT_CONFIG_FILE)
    if 'config_file' in config and not os.path.exists(path):
        raise spec.CniError(spec.INVALID_CONFIG, f'config_file: {path} does '
                            'not exist')
    conf = cfg.ConfigOpts()
    df_conf.register_opts(conf)
    conf([], project='dragonflow', default_config_files=[path]
         if os.path.exists(path) else [], default_config_dirs=[])
    if config.get('zookeeper'):
        conf.set_override('remote_db_hosts', config['zookeeper'].split(','),
                          group='df')
    conf.set_override('zk_connect_timeout', min(
        conf.df.zk_connect_timeout, float(config.get(
            'timeout', spec.DEFAULT_TIMEOUT))), group='df')
    return conf


class Plugin:
    def __init__(self, request):
        self.request = request
        self.conf = load_conf(request.config)
        self.vsctl = ['ovs-vsctl', f'--db={self.conf.df.ovsdb_connection}',
                      '--timeout=10']
        self.bridge = request.config.get('bridge') or \
            self.conf.df.integration_bridge
        self.port_id = port_id(request.container_id, request.ifname)

    def run(self):
        from dragonflow.nb.api import NbApi
        try:
            nb = NbApi.from_conf(self.conf)
        except errors.NbUnavailable as e:
            raise spec.CniError(spec.TRY_AGAIN, f'ZooKeeper unreachable '
                                f'({",".join(self.conf.df.remote_db_hosts)})'
                                f': {e}') from None
        try:
            return {'ADD': self.add, 'DEL': self.delete,
                    'CHECK': self.check}[self.request.command](nb)
        finally:
            nb.close()

    # --- ADD -------------------------------------------------------------
    def add(self, nb):
        request, config = self.request, self.request.config
        network = self._resolve(nb, 'logical_switch', config['network'],
                                'network')
        groups = [self._resolve(nb, 'security_group', g, 'security_groups')
                  for g in config.get('security_groups', [])]
        subnets = nb.list('subnet', network_id=network.id)
        subnet = None
        if config.get('subnet'):
            subnet = self._resolve(nb, 'subnet', config['subnet'], 'subnet')
            if subnet.network_id != network.id:
                raise spec.CniError(spec.INVALID_CONFIG, f'subnet: '
                                    f'{config["subnet"]} is not on network '
                                    f'{config["network"]}')
        port = self._create_port(nb, network, groups, subnets, subnet)
        try:
            addresses, routes, dns = _addressing(port, subnets)
            mtu = config.get('mtu') or network.mtu
            wiring.plug(self.vsctl, self.bridge, request, port, mtu,
                        [cidr for cidr, _ in addresses], routes,
                        userspace=self.conf.df.datapath_type == 'netdev')
            self._wait_ready(nb, port)
            wiring.announce(request.netns, request.ifname, port.macs[0],
                            [cidr for cidr, _ in addresses])
        except BaseException:
            self._remove(nb)
            raise
        return spec.result(request.version, request.ifname, port.macs[0],
                           request.netns, addresses, routes, dns)

    def _resolve(self, nb, table, ref, field):
        try:
            return nb.get(table, ref)
        except errors.NotFound:
            pass
        found = nb.list(table, name=ref)
        if len(found) != 1:
            raise spec.CniError(spec.INVALID_CONFIG, f'{field}: no '
                                f'{table.replace("_", " ")} {ref!r}' if not
                                found else f'{field}: {ref!r} names '
                                f'{len(found)} objects: give the id')
        return found[0]

    def _create_port(self, nb, network, groups, subnets, subnet):
        request = self.request
        args = request.args
        name = f'{args["K8S_POD_NAMESPACE"]}/{args["K8S_POD_NAME"]}' if \
            'K8S_POD_NAME' in args and 'K8S_POD_NAMESPACE' in args else \
            f'cni-{request.container_id[:12]}'
        data = {'id': self.port_id, 'network_id': network.id, 'name': name,
                'topic': network.topic, 'device_owner': OWNER,
                'device_id': f'{request.container_id}/{request.ifname}',
                'security_groups': [g.id for g in groups]}
        if 'IP' in args:
            data['ips'] = [args['IP']]
        elif subnet is not None and len(subnets) > 1:
            data['ips'] = [_free_address(nb, network, subnet)]
        try:
            return nb.get('logical_port', self.port_id)  # an ADD again
        except errors.NotFound:
            pass
        try:
            return nb.create('logical_port', data)
        except (errors.ValidationError, errors.UniqueConflict,
                errors.DanglingReference) as e:
            raise spec.CniError(spec.INVALID_CONFIG, str(e)) from None

    def _wait_ready(self, nb, port):
        """Until this chassis' agent has bound the port (woken by a watch
        on the port's znode, not by polling: fifty containers starting
        together must not cost fifty polling loops) and its delivery flow
        is on the switch (a few milliseconds later: polled)."""
        from kazoo.recipe import watchers
        chassis = self._chassis()
        deadline = time.monotonic() + self.request.timeout
        changed = threading.Event()

        def watch(data, stat, event=None):
            changed.set()
            return True
        watchers.DataWatch(nb.client, nb.store.layout.obj(
            'logical_port', port.id), watch)
        delay = POLL
        bound = False
        while True:
            if not bound:
                changed.clear()
                current = nb.get('logical_port', port.id)
                bound = current.binding_chassis == chassis
            if bound and _has_delivery_flow(self._switch(),
                                            current.unique_key):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if bound:
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, 0.4)
            else:
                changed.wait(min(remaining, 1.0))
        state = (f'bound, but its delivery flow is not on {self.bridge}'
                 if bound else f'not bound to chassis {chassis} (NB: '
                 f'{current.binding_chassis or "unbound"})')
        raise spec.CniError(spec.TRY_AGAIN, f'port {port.id} of container '
                            f'{self.request.container_id[:12]}: {state} '
                            f'after {self.request.timeout:g} s; is '
                            f'df-local-controller running on {chassis}?')

    def _chassis(self):
        """This chassis' id: [df] chassis_id, else the OVS system-id (as
        the agent takes it)."""
        return self.conf.df.chassis_id or _system_id(self.vsctl)

    def _switch(self):
        """ovs-ofctl's target for the bridge: its management socket in
        the run directory of the configured vswitchd."""
        unixctl = self.conf.df.vswitchd_unixctl
        if not unixctl:
            return self.bridge
        return f'unix:{flowdump.mgmt_path(self.bridge, unixctl)}'

    # --- DEL -------------------------------------------------------------
    def delete(self, nb):
        self._remove(nb)

    def _remove(self, nb):
        wiring.unplug(self.vsctl, self.bridge, self.request)
        try:
            nb.delete('logical_port', self.port_id)
        except errors.NotFound:
            pass

    # --- CHECK -----------------------------------------------------------
    def check(self, nb):
        try:
            port = nb.get('logical_port', self.port_id)
        except errors.NotFound:
            raise spec.CniError(
                spec.UNKNOWN_CONTAINER, f'no port for container '
                f'{self.request.container_id[:12]} {self.request.ifname}'
            ) from None
        mac, cidrs = wiring.container_addresses(self.request)
        subnets = nb.list('subnet', network_id=port.network_id)
        wanted = [cidr for cidr, _ in _addressing(port, subnets)[0]]
        if mac != port.macs[0] or sorted(cidrs) != sorted(wanted):
            raise spec.CniError(spec.IO_FAILURE, f'{self.request.ifname} has '
                                f'{mac} {cidrs}, the port {port.macs[0]} '
                                f'{wanted}')
        host = wiring.host_name(self.request.container_id,
                                self.request.ifname)
        if wiring.plugged_iface_id(self.vsctl, host) != port.id:
            raise spec.CniError(spec.IO_FAILURE, f'{host} is not plugged '
                                f'into {self.bridge} as port {port.id}')
        chassis = self._chassis()
        if port.binding_chassis != chassis:
            raise spec.CniError(spec.IO_FAILURE, f'port {port.id} is bound '
                                f'to {port.binding_chassis}, not {chassis}')


def _addressing(port, subnets):
    """([(cidr, gateway)], [(destination, gateway)], [dns]) of a port."""
    addresses, routes, dns = [], [], []
    for ip in port.ips:
        addr = ipaddress.ip_address(ip)
        subnet = next((s for s in subnets if addr in s.network), None)
        if subnet is None:
            continue
        addresses.append((f'{ip}/{subnet.network.prefixlen}',
                          subnet.gateway_ip))
        if subnet.gateway_ip:
            default = '0.0.0.0/0' if addr.version == 4 else '::/0'
            if all(d != default for d, _ in routes):
                routes.append((default, subnet.gateway_ip))
        routes += [(r['destination'], r['nexthop'])
                   for r in subnet.host_routes]
        dns += [d for d in subnet.dns_nameservers if d not in dns]
    return addresses, routes, dns


def _free_address(nb, network, subnet):
    used = {ip for p in nb.list('logical_port', network_id=network.id)
            for ip in p.ips}
    for host in subnet.network.hosts():
        ip = str(host)
        if ip not in used and ip != subnet.gateway_ip:
            return ip
    raise spec.CniError(spec.INVALID_CONFIG, f'subnet: {subnet.id} has no '
                        'free address')


def _system_id(vsctl):
    proc = subprocess.run(vsctl + ['get', 'Open_vSwitch', '.',
                                   'external_ids:system-id'],
                          capture_output=True, text=True)
    return proc.stdout.strip().strip('"')


def _has_delivery_flow(switch, key):
    """The agent's output flow for the port (ingress dispatch) is on the
    switch."""
    proc = subprocess.run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows',
                           switch, f'table=115,reg7={key}'],
                          capture_output=True, text=True)
    return proc.returncode == 0 and 'output:' in proc.stdout


def main(environ=None, stdin=None, stdout=None):
    environ = os.environ if environ is None else environ
    stdout = stdout or sys.stdout
    version = spec.SUPPORTED_VERSIONS[-1]
    try:
        data = stdin if stdin is not None else (
            b'' if environ.get('CNI_COMMAND') == 'VERSION'
            else sys.stdin.buffer.read())
        request = spec.Request(environ, data)
        version = request.version
        out = spec.version_info() if request.command == 'VERSION' else \
            Plugin(request).run()
    except spec.CniError as e:
        json.dump(e.to_dict(version), stdout)
        stdout.write('\n')
        return 1
    except Exception as e:        # a bug or the unexpected: still JSON
        json.dump(spec.CniError(spec.INTERNAL, f'{type(e).__name__}: {e}')
                  .to_dict(version), stdout)
        stdout.write('\n')
        return 1
    if out is not None:
        json.dump(out, stdout)
        stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
