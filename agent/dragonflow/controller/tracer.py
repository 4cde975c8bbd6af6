"""Answers ``dfctl trace --physical`` and ``dfctl check`` requests for this
chassis (the protocol is in ``dragonflow.trace.requests``).

A trace request names the packet (headers as the logical trace predicts them),
where it enters (a logical port, or a tunnel with its metadata) and the
conntrack states to assume at each recirculation. A worker thread runs
``ovs-appctl ofproto/trace`` on br-int; the main loop, which owns the
flow table, then annotates each flow the packet hit with the app its
cookie names, the generation that installed it (a flow of an older
generation is drift), and the NB object(s) it was built for; the worker
writes the answer back. The main loop is only borrowed for the
annotation (no subprocess or ZooKeeper call in it).

A health request (``kind: health``) gets this agent's view for ``dfctl
check``: flow drift (the flows the agent wants, counted per app, table
and priority from its flow table, against ``ovs-ofctl dump-flows`` of
br-int: missing and extra per place, flows of an older generation, flows
of cookies no app owns), the tunnel ports it should have, and whether the
switch is connected, and the BFD sessions to the other chassis
(controller/bfd.py). Counting, not comparing flow texts: a flow changed
in place with the same count is not seen (said in ``dfctl check --help``).
"""
import collections
import concurrent.futures
import logging
import re
import subprocess
import time

from dragonflow.controller import apps as df_apps
from dragonflow.controller import ofswitch
from dragonflow.controller import pipeline as pl
from dragonflow.trace import ofproto
from dragonflow.trace import requests

LOG = logging.getLogger(__name__)
TRACE_TIMEOUT = 10.0     # seconds for ofproto/trace
ANNOTATE_TIMEOUT = 5.0   # seconds the main loop may take to annotate
# Match fields whose values OVS prints differently from our Flow data
# (eth_type as "ip", ct_state as flags, ...): not compared.
UNCOMPARED = {'eth_type', 'ip_proto', 'ct_state', 'vlan_vid', 'conj_id',
              'ct_mark', 'ip_dscp', 'icmpv4_type', 'icmpv4_code',
              'icmpv6_type', 'icmpv6_code', 'nw_ttl'}


class Tracer:
    def __init__(self, client, layout, controller, bridge='br-int',
                 unixctl=None):
        self.client = client
        self.controller = controller
        self.chassis_id = controller.state.chassis_id
        self.dir = requests.chassis_dir(layout, self.chassis_id)
        self.bridge = bridge
        self.unixctl = unixctl
        # app cookie -> app name (the apps are fixed for the process)
        self.apps = {cookie: name
                     for name, cookie in controller.cookies.items()}
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix='tracer')
        self._seen = set()

    def start(self):
        self.client.ensure_path(self.dir)
        self.client.ChildrenWatch(self.dir, self._children)
        return self

    def _children(self, names):
        names = set(names)
        for name in sorted(names - self._seen):
            self.pool.submit(self._serve, f'{self.dir}/{name}')
        self._seen = names

    def _serve(self, path):
        found = requests.pending(self.client, path)
        if found is None:
            return
        request, version = found
        handler = {'trace': self.trace, 'health': self.health}.get(
            request.get('kind', 'trace'))
        try:
            if handler is None:
                raise ValueError(f'unknown request kind {request["kind"]!r}')
            result = handler(request)
        except Exception as e:      # the asker gets the reason, not silence
            LOG.exception('trace request %s failed', path)
            result = {'error': f'{type(e).__name__}: {e}'}
        result['chassis'] = self.chassis_id
        requests.answer(self.client, path, request, version, result)

    # --- one trace (worker thread) ---------------------------------------
    def entry(self, request):
        """(ofport, VLAN, tunnel fields) where the packet enters br-int."""
        state = self.controller.state
        tunnel = request.get('tunnel')
        if tunnel:
            ofport = state.tunnel_ofports.get(tunnel.get('type'))
            if ofport is None:
                raise LookupError(f'no {tunnel.get("type")} tunnel port on '
                                  f'{self.bridge}')
            return ofport, None, tunnel
        wire = state.wire(request['port'])
        if wire is None:
            raise LookupError(f'port {request["port"]} is not plugged here '
                              f'(no interface with iface-id '
                              f'{request["port"]} on {self.bridge})')
        vlan = request.get('vlan')
        # A subport named directly: its parent's interface, its VLAN.
        return wire[0], wire[1] if vlan is None else vlan, None

    def trace(self, request):
        ofport, vlan, tunnel = self.entry(request)
        flow = ofproto.flow_spec(request['headers'], ofport, vlan, tunnel)
        cmd = ['ovs-appctl'] + (['-t', self.unixctl] if self.unixctl
                                else []) + ['ofproto/trace', self.bridge,
                                            flow]
        for state in request.get('ct', []):
            cmd += ['--ct-next', state]
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=TRACE_TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError(f'ofproto/trace failed: '
                               f'{proc.stderr.strip() or proc.stdout.strip()}')
        parsed = ofproto.parse(proc.stdout)
        try:
            result = self.in_main_loop(lambda: self.describe(parsed))
        except concurrent.futures.TimeoutError:
            result = self.describe(parsed, owners=False)
            result['note'] = (f'the agent was busy for {ANNOTATE_TIMEOUT:.0f}'
                              ' s: flows annotated by cookie only')
        result.update(flow=flow, text=proc.stdout)
        return result

    def in_main_loop(self, fn):
        """fn() run by the main loop (which owns the flow table); raises
        TimeoutError when the loop is busy for ANNOTATE_TIMEOUT."""
        done = concurrent.futures.Future()
        self.controller.post('trace', (fn, done))
        try:
            return done.result(ANNOTATE_TIMEOUT)
        except concurrent.futures.TimeoutError:
            raise concurrent.futures.TimeoutError(
                f'the agent\'s main loop was busy for {ANNOTATE_TIMEOUT:.0f}'
                ' s (a full sync?)') from None

    # --- health (worker thread) ------------------------------------------
    def health(self, request):
        ctl = self.controller
        wanted_types = list(ctl.conf.df.tunnel_types)
        tunnels = dict(ctl.state.tunnel_ofports)
        drift = None
        for attempt in range(2):
            # A change being installed shows as drift for a moment: only
            # what two looks a second apart agree on is reported.
            if attempt:
                time.sleep(1.0)
            wanted, generation = self.in_main_loop(self.wanted)
            found = self.compare(wanted, generation, self.dump_flows())
            drift = found if drift is None else _common(drift, found)
            if not (drift['missing'] or drift['extra'] or drift['stale'] or
                    drift['unknown']):
                break
        return dict(drift, connected=ctl.datapath is not None,
                    generation=generation, refused=ctl.refused,
                    tunnels={t: tunnels.get(t) for t in wanted_types},
                    bfd=ctl.bfd.status() if ctl.bfd is not None else None)

    def wanted(self):
        """(Counter of (app, table, priority) → flows wanted, generation);
        main loop."""
        ctl = self.controller
        return ctl.installed.counts(), ctl.generation

    def dump_flows(self):
        """(cookie, table, priority) of every flow on the bridge."""
        proc = subprocess.run(
            ['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', '--no-stats',
             self.bridge], capture_output=True, text=True,
            timeout=TRACE_TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError(f'ovs-ofctl dump-flows failed: '
                               f'{proc.stderr.strip()}')
        out = []
        for line in proc.stdout.splitlines():
            line = line.split(' actions=')[0]      # ct(table=N) is no table
            cookie = DUMP_COOKIE.search(line)
            if cookie is None:
                continue
            table = DUMP_TABLE.search(line)
            priority = DUMP_PRIORITY.search(line)
            out.append((int(cookie.group(1), 16),
                        int(table.group(1)) if table else 0,
                        int(priority.group(1)) if priority else 32768))
        return out

    def compare(self, wanted, generation, dumped):
        have = collections.Counter()
        stale, unknown = collections.Counter(), collections.Counter()
        # Flows the switch learned (cookie 0, in a stage for them) are
        # its own, not the agent's.
        dumped = [d for d in dumped if d[0] or d[1] not in pl.LEARNED]
        for cookie, table, priority in dumped:
            flow_generation, app_cookie = ofswitch.split_cookie(cookie)
            app = self.apps.get(app_cookie)
            if app is None:
                unknown[(hex(cookie), table, priority)] += 1
            elif flow_generation != generation:
                stale[(app, table, priority)] += 1
            else:
                have[(app, table, priority)] += 1
        missing = wanted - have
        extra = have - wanted
        return {'flows': len(dumped), 'wanted': sum(wanted.values()),
                'missing': _rows(missing), 'extra': _rows(extra),
                'stale': _rows(stale), 'unknown': [
                    {'cookie': c, 'table': t, 'priority': p, 'count': n}
                    for (c, t, p), n in sorted(unknown.items())]}

    # --- annotation (main loop) ------------------------------------------
    def describe(self, parsed, owners=True):
        """The hits with app, generation and NB owners, and the outcome."""
        ctl = self.controller
        mine = [h for h in parsed.hits if h.bridge == self.bridge]
        installed = ctl.installed.at({(h.table, h.priority) for h in mine}) \
            if owners else {}
        hits = []
        for hit in parsed.hits:
            entry = {'bridge': hit.bridge, 'table': hit.table,
                     'stage': pl.BY_ID[hit.table].name
                     if hit.bridge == self.bridge and hit.table in pl.BY_ID
                     else None,
                     'priority': hit.priority, 'match': hit.match,
                     'actions': hit.actions,
                     'cookie': hex(hit.cookie) if hit.cookie is not None
                     else None}
            if hit.bridge == self.bridge and hit.cookie is not None:
                generation, app_cookie = ofswitch.split_cookie(hit.cookie)
                app = self.apps.get(app_cookie)
                entry.update(app=app or 'unknown', generation=generation,
                             stale=generation != ctl.generation)
                keys = []
                for owner_app, key, flow in installed.get(
                        (hit.table, hit.priority), ()):
                    if owner_app == app and _fits(flow, hit.match) and \
                            key not in keys:
                        keys.append(key)
                entry['objects'] = [self.object_of(k) for k in keys[:3]]
            hits.append(entry)
        return {'hits': hits, 'outcome': self.outcome(parsed),
                'datapath_actions': parsed.datapath_actions,
                'final_flow': parsed.final_flow}

    def object_of(self, key):
        """The NB object a flow table key names: a network id,
        ('port', id), or an app's (app, kind, id)."""
        state = self.controller.state
        if key == df_apps.GLOBAL:
            return {'table': None, 'id': 'table default', 'name': None}
        kind, obj_id = None, key
        if isinstance(key, tuple):
            kind, obj_id = key[-2], key[-1]
        if isinstance(obj_id, str):
            for table in state.objects:
                obj = state.get(table, obj_id)
                if obj is not None:
                    return {'table': table, 'id': obj_id,
                            'name': getattr(obj, 'name', None)}
        return {'table': kind, 'id': str(obj_id), 'name': None}

    def outcome(self, parsed):
        state = self.controller.state
        kind, what = ofproto.outcome(parsed, self.bridge)
        if kind == 'dropped':
            return {'kind': 'dropped', 'table': what.table if what else None}
        if kind == 'controller':
            return {'kind': 'controller', 'table': what.table}
        tunnels = {n: t for t, n in state.tunnel_ofports.items()}
        patches = {n: p for p, n in state.provider_ofports.items()}
        outputs = []
        for port in what:
            number = int(port) if port.isdigit() else None
            if number in tunnels:
                fields = ofproto.tunnel_fields(parsed, self.bridge)
                outputs.append(dict(fields, kind='tunnel',
                                    type=tunnels[number]))
            elif number in patches:
                outputs.append({'kind': 'provider', 'physnet':
                                patches[number]})
            elif number is not None:
                port_obj = state.port_by_ofport(number)
                outputs.append({'kind': 'delivered', 'ofport': number,
                                'port': port_obj.id if port_obj else None,
                                'name': getattr(port_obj, 'name', None)})
            else:
                outputs.append({'kind': 'output', 'port': port})
        return {'kind': outputs[0]['kind'], 'outputs': outputs}


# ovs-ofctl dump-flows --no-stats: " cookie=0x1, table=5, priority=200,..."
# (table 0 and the default priority 32768 are left out).
DUMP_COOKIE = re.compile(r'\bcookie=(0x[0-9a-f]+)')
DUMP_TABLE = re.compile(r'\btable=(\d+)')
DUMP_PRIORITY = re.compile(r'\bpriority=(\d+)')


def run_in_loop(payload):
    """The main loop's part of a request: (fn, future)."""
    fn, done = payload
    try:
        done.set_result(fn())
    except Exception as e:
        done.set_exception(e)


def _rows(counter):
    return [{'app': a, 'table': t, 'stage': pl.name(t), 'priority': p,
             'count': n} for (a, t, p), n in sorted(counter.items())]


def _common(first, second):
    """What two drift reports both saw (the smaller count of each)."""
    out = dict(second)
    for kind, key in (('missing', 'app'), ('extra', 'app'),
                      ('stale', 'app'), ('unknown', 'cookie')):
        seen = {(r[key], r['table'], r['priority']): r['count']
                for r in first[kind]}
        out[kind] = [dict(r, count=min(r['count'], seen[(r[key], r['table'],
                                                         r['priority'])]))
                     for r in second[kind]
                     if (r[key], r['table'], r['priority']) in seen]
    return out


def _tokens(match):
    out = set()
    for part in match.split(','):
        _, _, value = part.partition('=')
        value = value.strip('"').lower()
        out.add(value)
        out.update(value.split('/'))
    return out


def _fits(flow, match):
    """Whether an installed flow can be the one ofproto/trace printed
    (its compared match values all appear in the printed match)."""
    tokens = _tokens(match)
    for field, value in flow.match:
        if field in UNCOMPARED:
            continue
        if isinstance(value, tuple):
            value = value[0]
        if isinstance(value, int):
            if hex(value) not in tokens and str(value) not in tokens:
                return False
        elif str(value).lower() not in tokens:
            return False
    return True
