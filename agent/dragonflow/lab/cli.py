"""dragonflow-lab: bring up the lab on this machine and run the demo.

    dragonflow-lab up       start the lab's ZooKeeper (state in --dir)
    dragonflow-lab status   what is running
    dragonflow-lab down     stop what `up` started (by PID)
    dragonflow-lab demo     up, a dfctl tour with a live change stream,
                            service health, then down (--keep to leave it up)
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

from dragonflow.lab import zookeeper

DEFAULT_DIR = '/var/tmp/dragonflow-lab'


class Lab:
    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        self.state_file = os.path.join(self.dir, 'lab.json')

    def state(self):
        try:
            with open(self.state_file) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def save(self, state):
        os.makedirs(self.dir, exist_ok=True)
        with open(self.state_file, 'w') as f:
            json.dump(state, f, indent=2)

    def up(self):
        state = self.state()
        if state.get('zookeeper') and _alive(state['zookeeper']['pid']):
            return state
        server = zookeeper.ZkServer(os.path.join(self.dir, 'zookeeper'))
        server.start().wait_ready()
        state['zookeeper'] = {'pid': server.proc.pid,
                              'address': server.address}
        self.save(state)
        return state

    def down(self):
        state = self.state()
        zk = state.pop('zookeeper', None)
        if zk and _alive(zk['pid']):
            os.kill(zk['pid'], signal.SIGTERM)
            _wait_dead(zk['pid'])
        self.save(state)

    def env(self):
        env = dict(os.environ)
        env['OS_DF__REMOTE_DB_HOSTS'] = self.state()['zookeeper']['address']
        agent = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        env['PYTHONPATH'] = agent + os.pathsep + env.get('PYTHONPATH', '')
        return env


def _alive(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            return not any(line.startswith('State:') and 'Z' in line.split()[1]
                           for line in f)
    except FileNotFoundError:
        return False


def _wait_dead(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _dfctl(lab, *args):
    print(f'$ dfctl {" ".join(args)}', flush=True)
    proc = subprocess.run([sys.executable, '-m', 'dragonflow.cli.dfctl',
                           *args], env=lab.env(), text=True,
                          capture_output=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode:
        sys.stdout.write(proc.stderr)
    print(flush=True)
    return proc


def demo(lab):
    from dragonflow import conf as df_conf
    from dragonflow.nb import api as nb_api
    from dragonflow.nb import health

    state = lab.up()
    conf = df_conf.load([], conf=df_conf.cfg.ConfigOpts())
    conf.set_override('remote_db_hosts', [state['zookeeper']['address']],
                      group='df')
    nb = nb_api.NbApi.from_conf(conf)
    events = []
    sub = nb.subscribe(lambda c: events.append(c), name='demo')
    sub.wait_synced(10)
    reporter = health.ServiceReporter(nb, 'df-demo', 'lab-host', 'lab-host',
                                      report_interval=1).start()
    try:
        _dfctl(lab, 'chassis', 'create', '--id', 'lab-host', '--hostname',
               'lab-host', '--ip', '192.0.2.10')
        _dfctl(lab, 'network', 'create', '--name', 'blue', '--network-type',
               'geneve')
        _dfctl(lab, 'subnet', 'create', '--name', 'blue-v4', '--network-id',
               'blue', '--cidr', '10.1.0.0/24', '--dns-nameservers', '10.1.0.53')
        for vm in ('vm1', 'vm2'):
            _dfctl(lab, 'port', 'create', '--name', vm, '--network-id', 'blue')
        _dfctl(lab, 'port', 'create', '--name', 'bad', '--network-id', 'blue',
               '--ips', '10.9.9.9')
        _dfctl(lab, 'port', 'list')
        _dfctl(lab, 'service', 'list')
        _dfctl(lab, 'chassis', 'list')
        time.sleep(0.5)
        print('change stream seen by a subscriber:')
        for change in events:
            print(f'  #{change.position} {change.action:6} {change.table} '
                  f'{getattr(change.obj, "name", "") or change.id}')
        ok = len([c for c in events if c.table == 'logical_port']) == 2
        print('\ndemo ' + ('passed' if ok else 'FAILED'))
        return 0 if ok else 1
    finally:
        reporter.stop(unregister=True)
        sub.stop()
        nb.close()


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='dragonflow-lab', description=__doc__.split('\n\n')[0])
    parser.add_argument('--dir', default=DEFAULT_DIR,
                        help=f'lab state directory (default {DEFAULT_DIR})')
    sub = parser.add_subparsers(dest='cmd', required=True)
    sub.add_parser('up', help='start the lab')
    sub.add_parser('down', help='stop the lab')
    sub.add_parser('status', help='show what is running')
    d = sub.add_parser('demo', help='run the demo (up, tour, down)')
    d.add_argument('--keep', action='store_true', help='leave the lab up')
    args = parser.parse_args(argv)
    lab = Lab(args.dir)
    if args.cmd == 'up':
        state = lab.up()
        print(f'ZooKeeper at {state["zookeeper"]["address"]}; use\n'
              f'  export OS_DF__REMOTE_DB_HOSTS={state["zookeeper"]["address"]}')
        return 0
    if args.cmd == 'down':
        lab.down()
        return 0
    if args.cmd == 'status':
        state = lab.state()
        for name, item in state.items():
            print(f'{name}: pid {item["pid"]} '
                  f'{"running" if _alive(item["pid"]) else "dead"} '
                  f'{item.get("address", "")}')
        return 0
    try:
        return demo(lab)
    finally:
        if not args.keep:
            lab.down()


if __name__ == '__main__':
    sys.exit(main())
