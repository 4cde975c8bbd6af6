"""BGP in the lab: ``df-bgp`` in a namespace of its own (on the underlay,
to reach ZooKeeper, and on the external network), peering with a real
BIRD 2 that runs on the upstream router (an External host of the provider
segment), so ``birdc show route`` shows what the deployment advertises."""
import os
import subprocess
import sys

from lab_harness import netlab
from lab_harness.netlab import AGENT_DIR, kill_pid, read_pidfile, sh

BIRD_CONF = """router id {bird_ip};
protocol device {{}}
protocol bgp dragonflow {{
  local {bird_ip} as {bird_as};
  neighbor {speaker_ip} as {speaker_as};
  hold time 9; keepalive time 3; connect retry time 2;
  ipv4 {{ import all; export none; }};
}}
"""


class BgpLab:
    """df-bgp + BIRD. ``upstream``: the External host BIRD runs on, with
    ``bird_ip`` already on it (on VLAN ``vlan``, or untagged)."""

    def __init__(self, lab, upstream, vlan=None, bird_ip=None,
                 speaker_ip='172.24.4.254', bird_as=65000, speaker_as=64512):
        self.lab = lab
        self.upstream = upstream
        self.vlan = vlan
        self.bird_ip = bird_ip or netlab.EXTERNAL_GATEWAY
        self.speaker_ip = speaker_ip
        self.bird_as = bird_as
        self.speaker_as = speaker_as
        self.ns = f'{lab.prefix}-bgp'
        self.dir = os.path.join(lab.dir, 'bgp')
        self.proc = None
        self.switch_port = 'bgp0'

    @property
    def log(self):
        return os.path.join(self.dir, 'df-bgp.log')

    def start(self):
        self.stop()
        os.makedirs(self.dir, exist_ok=True)
        lab = self.lab
        root_end = f'{lab.prefix}bgp'[:15]
        lab.track_netns(self.ns, root_end)
        sh('ip', 'netns', 'add', self.ns)
        sh('ip', 'link', 'set', 'lo', 'up', ns=self.ns)
        sh('ip', 'link', 'add', root_end, 'type', 'veth', 'peer', 'name',
           'ul0', 'netns', self.ns)
        sh('ip', 'link', 'set', root_end, 'master', lab.bridge, 'up')
        sh('ip', 'addr', 'add',
           f'{lab.chassis_ip(49)}/{lab.underlay.prefixlen}', 'dev', 'ul0',
           ns=self.ns)
        sh('ip', 'link', 'set', 'ul0', 'up', ns=self.ns)
        lab.switch.plug(self.ns, 'ext0', self.switch_port,
                        tag=self.vlan if self.vlan is not None else 0)
        sh('ip', 'addr', 'add', f'{self.speaker_ip}/24', 'dev', 'ext0',
           ns=self.ns)
        with open(os.path.join(self.dir, 'bird.conf'), 'w') as f:
            f.write(BIRD_CONF.format(
                bird_ip=self.bird_ip, bird_as=self.bird_as,
                speaker_ip=self.speaker_ip, speaker_as=self.speaker_as))
        sh('bird', '-c', f'{self.dir}/bird.conf', '-s',
           f'{self.dir}/bird.ctl', '-P', f'{self.dir}/bird.pid',
           ns=self.upstream.ns)
        lab.track('bird', read_pidfile(os.path.join(self.dir, 'bird.pid')))
        self._write_config()
        self.start_speaker()
        return self

    def _write_config(self):
        lab = self.lab
        config = os.path.join(self.dir, 'df-bgp.ini')
        with open(config, 'w') as f:
            f.write(f'[df]\nremote_db_hosts = {lab.zk_address}\n'
                    'host = bgp1\n'
                    '[df_bgp]\nlisten_port = 0\n'
                    f'router_id = {self.speaker_ip}\nstatus_interval = 1\n')
        return config

    def start_speaker(self):
        """Start df-bgp (in its namespace)."""
        lab = self.lab
        config = os.path.join(self.dir, 'df-bgp.ini')
        log = open(self.log, 'ab')
        self.proc = subprocess.Popen(
            ['ip', 'netns', 'exec', self.ns, sys.executable, '-m',
             'dragonflow.bgp.service', '--config-file', config],
            stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=AGENT_DIR))
        log.close()
        lab.track('df-bgp', self.proc.pid)

    def restart_speaker(self):
        """systemctl restart df-bgp, as the lab has it: SIGTERM (the
        process exits, no NOTIFICATION), then a new process."""
        kill_pid(self.proc.pid)
        self.proc.wait()
        self.start_speaker()

    def peer_objects(self, nb, networks):
        """NB BGP peer and speaker for this lab, advertising networks."""
        peer = nb.create('bgp_peer', {'peer_ip': self.bird_ip,
                                      'remote_as': self.bird_as})
        speaker = nb.create('bgp_speaker', {
            'local_as': self.speaker_as, 'peers': [peer.id],
            'networks': list(networks)})
        return peer, speaker

    def birdc(self, *args):
        return sh('birdc', '-s', f'{self.dir}/bird.ctl', *args)

    def established(self):
        return 'Established' in self.birdc('show', 'protocols', 'dragonflow')

    def stop(self):
        if self.proc is not None:
            kill_pid(self.proc.pid)
            self.proc.wait()
            self.proc = None
        self.lab.untrack('df-bgp')
        self.lab.untrack('bird')
        try:
            with open(os.path.join(self.dir, 'bird.pid')) as f:
                kill_pid(int(f.read().strip()))
        except (OSError, ValueError):
            pass
        if os.path.exists(os.path.join(self.lab.switch.dir, 'db.sock')):
            self.lab.switch.unplug(self.switch_port)
        self.lab.remove_netns({self.ns: f'{self.lab.prefix}bgp'[:15]})
        self.lab.extra_ns.pop(self.ns, None)
