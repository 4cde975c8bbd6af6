"""What is broken now, each finding with its cause (``dfctl check``).

From the NB and the health registry: services down (presence gone: the
ZooKeeper session is lost; or a heartbeat older than ``down_time``: hung)
and chassis with no agent; ports bound to a chassis that is not
registered or whose agent is down; ports a device claims
(``device_owner``/``device_id``) plugged on no chassis; BGP peers not
Established. From each agent that is up (a ``health`` request through
ZooKeeper, like the physical trace): flow drift per app (missing and
extra flows per table and priority, flows of an older generation, flows
of cookies no app owns), tunnel ports missing, BFD sessions to other
chassis that are not up (the underlay between them is cut), the switch
not connected,
flows the pipeline check refused. An agent that does not answer in time
is a finding too. Drift is counted per app, table and priority: a flow
changed in place (same place, other match or actions) is not seen.
"""
import collections
import concurrent.futures
import time

from dragonflow.model import loadbalancer as lbm
from dragonflow.nb import health
from dragonflow.trace import requests

AGENT = 'df-local-controller'


class Finding(collections.namedtuple('Finding', 'kind subject text')):
    """One thing broken: its kind (service, port, drift, tunnel, bgp,
    switch), the object it is about and what is wrong."""

    __slots__ = ()

    def to_dict(self):
        return dict(self._asdict())


def services(rows, now):
    out = []
    for row in rows:
        if row['state'] == 'up':
            continue
        if not row['session']:
            why = 'its ZooKeeper session is gone (stopped, crashed or cut off)'
        elif row['last_heartbeat'] is None:
            why = 'it never sent a heartbeat'
        else:
            why = (f'last heartbeat {now - row["last_heartbeat"]:.0f} s ago '
                   '(hung?)')
        out.append(Finding('service', row['id'], f'{row["binary"]} on '
                           f'{row["chassis"]} down since {health.since_text(row["since"])}:'
                           f' {why}'))
    return out


def chassis_agents(chassis, rows):
    """{chassis id: agent row or None}."""
    agents = {r['chassis']: r for r in rows if r['binary'] == AGENT}
    return {c.id: agents.get(c.id) for c in chassis}


# Ports no interface ever carries: load balancer VIPs (served by the
# chassis of each client).
VIRTUAL = (lbm.VIP_OWNER,)


def ports(nb, agents):
    out = []
    children = {s.port_id for s in nb.list('child_port_segmentation')}
    for port in sorted(nb.list('logical_port'), key=lambda p: p.id):
        where = port.binding_chassis
        name = f'{port.name} ({port.id})' if port.name else port.id
        if where and where not in agents:
            out.append(Finding('port', port.id, f'port {name} is bound to '
                               f'chassis {where}, which is not registered'))
        elif where and (agents[where] is None or
                        agents[where]['state'] != 'up'):
            out.append(Finding('port', port.id, f'port {name} is bound to '
                               f'chassis {where}, whose {AGENT} is down'))
        elif not where and port.id not in children and \
                port.device_owner not in VIRTUAL and (
                    port.device_owner or port.device_id):
            out.append(Finding('port', port.id, f'port {name} of '
                               f'{port.device_owner or "device"} '
                               f'{port.device_id or ""} is plugged on no '
                               'chassis (no interface with its iface-id)'))
    return out


def bgp(nb):
    out = []
    speakers = {s.id for s in nb.list('bgp_speaker')}
    for status in health.bgp_statuses(nb):
        if status.get('speaker') not in speakers:
            continue        # the status of a speaker deleted since
        for peer in status.get('peers', []):
            if peer.get('state') != 'Established':
                out.append(Finding('bgp', f'{status["speaker"]}/{peer["ip"]}',
                                   f'BGP speaker {status["speaker"]}: peer '
                                   f'{peer["ip"]} (AS {peer.get("remote_as")})'
                                   f' is {peer.get("state") or "unknown"}, '
                                   'not Established'))
    return out


def agent_findings(chassis_id, answer):
    """Findings from one agent's health answer."""
    out = []
    if answer is None:
        return [Finding('service', chassis_id, f'chassis {chassis_id}: '
                        f'{AGENT} is up but did not answer the health '
                        'request in time')]
    if 'error' in answer:
        return [Finding('switch', chassis_id, f'chassis {chassis_id}: '
                        f'{answer["error"]}')]
    if not answer.get('connected'):
        out.append(Finding('switch', chassis_id, f'chassis {chassis_id}: '
                           'br-int is not connected to the agent'))
    for ttype, ofport in sorted(answer.get('tunnels', {}).items()):
        if ofport is None:
            out.append(Finding('tunnel', chassis_id, f'chassis {chassis_id}: '
                               f'no {ttype} tunnel port on br-int'))
    for remote, bfd in sorted((answer.get('bfd') or {}).items()):
        if bfd.get('state') != 'up':
            out.append(Finding('tunnel', f'{chassis_id}->{remote}',
                               f'tunnel {chassis_id} -> {remote} '
                               f'({bfd.get("remote_ip")}): BFD '
                               f'{bfd.get("state") or "not running"}'
                               f' ({bfd.get("diagnostic") or "no diagnostic"}'
                               '): the underlay does not carry UDP between '
                               'the two chassis'))
    for kind, verb in (('missing', 'missing'), ('extra', 'extra'),
                       ('stale', 'left from an older generation')):
        for row in answer.get(kind, ()):
            out.append(Finding('drift', chassis_id, f'chassis {chassis_id}: '
                               f'{row["count"]} flow(s) of app {row["app"]} '
                               f'{verb} in table {row["stage"]} priority '
                               f'{row["priority"]}'))
    for row in answer.get('unknown', ()):
        out.append(Finding('drift', chassis_id, f'chassis {chassis_id}: '
                           f'{row["count"]} flow(s) with cookie '
                           f'{row["cookie"]} (no app\'s) in table '
                           f'{row["table"]} priority {row["priority"]}'))
    if answer.get('refused'):
        out.append(Finding('drift', chassis_id, f'chassis {chassis_id}: '
                           f'{answer["refused"]} flow(s) refused by the '
                           'pipeline check since the agent started (see its '
                           'log)'))
    return out


def run(nb, down_time, timeout=5.0, now=None):
    """(findings, {chassis id: health answer or None})."""
    now = time.time() if now is None else now
    rows = health.service_status(nb, down_time, now)
    chassis = nb.list('chassis')
    agents = chassis_agents(chassis, rows)
    findings = services(rows, now)
    for chassis_id, row in sorted(agents.items()):
        if row is None:
            findings.append(Finding('service', chassis_id, f'chassis '
                                    f'{chassis_id} has no {AGENT} '
                                    'registered'))
    findings += ports(nb, agents)
    up = sorted(c for c, r in agents.items() if r and r['state'] == 'up')
    answers = {}
    if up:
        with concurrent.futures.ThreadPoolExecutor(len(up)) as pool:
            asked = {c: pool.submit(requests.ask, nb.client,
                                    nb.store.layout, c, {'kind': 'health'},
                                    timeout) for c in up}
            answers = {c: f.result() for c, f in asked.items()}
    for chassis_id in up:
        findings += agent_findings(chassis_id, answers[chassis_id])
    findings += bgp(nb)
    return findings, answers


def text(findings, answers):
    lines = []
    for chassis_id, answer in sorted(answers.items()):
        if answer and 'flows' in answer:
            lines.append(f'chassis {chassis_id}: {answer["flows"]} flows on '
                         f'br-int, {answer["wanted"]} wanted, generation '
                         f'{answer["generation"]}')
    if not findings:
        lines.append('nothing wrong found')
    for finding in findings:
        lines.append(f'{finding.kind.upper():<8} {finding.text}')
    return '\n'.join(lines)
