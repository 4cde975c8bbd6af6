"""The physical trace: the logical trace's packet asked of the real
switches, chassis by chassis, and where the two disagree.

The source chassis' agent traces the packet from the source port; where
its flows send it into a tunnel, the chassis owning the tunnel's
destination address continues with the tunnel metadata and the packet as
it left (MACs rewritten, TTL decremented). Each chassis' agent must be up
(its df-local-controller service) and answer within ``timeout`` seconds;
otherwise that hop says why there is no trace, and the walk stops there.
"""
import time

from dragonflow.controller import pipeline as pl
from dragonflow.nb import health
from dragonflow.trace import requests

MAX_HOPS = 4
BINARY = 'df-local-controller'
# Final-flow fields a receiving chassis starts from.
CARRIED = {4: {'dl_src': 'dl_src', 'dl_dst': 'dl_dst', 'nw_src': 'nw_src',
               'nw_dst': 'nw_dst', 'nw_ttl': 'nw_ttl'},
           6: {'dl_src': 'dl_src', 'dl_dst': 'dl_dst', 'ipv6_src': 'nw_src',
               'ipv6_dst': 'nw_dst', 'nw_ttl': 'nw_ttl'}}


def _since(ts):
    return time.strftime('%H:%M:%S', time.localtime(ts)) if ts else '?'


def agent_down(nb, chassis_id, down_time):
    """Why chassis_id's agent cannot trace (None when it is up)."""
    rows = [r for r in health.service_status(nb, down_time)
            if r['chassis'] == chassis_id and r['binary'] == BINARY]
    if not rows:
        return f'chassis {chassis_id}: no {BINARY} registered (no trace)'
    row = rows[0]
    if row['state'] != 'up':
        return (f'chassis {chassis_id}: {BINARY} down since '
                f'{_since(row["since"])} (no trace)')
    return None


def trace(nb, logical, down_time, timeout=5.0):
    """Hops [{'chassis', 'result' | 'error'}] along the packet's path."""
    headers = dict(logical.headers)
    hops = []
    if not logical.hops or not logical.hops[0]['chassis']:
        return [{'chassis': None, 'error': f'port {headers.get("port")} is '
                 'bound to no chassis: there is no switch to trace on'}]
    if 'dl_dst' not in headers:
        return [{'chassis': logical.hops[0]['chassis'], 'error': 'the '
                 'packet has no next-hop MAC (nothing answers for it): it '
                 'never leaves the VM'}]
    ct = {h['chassis']: h['ct'] for h in reversed(logical.hops)}
    chassis_id = logical.hops[0]['chassis']
    request = {'port': headers['port'], 'vlan': headers.get('vlan'),
               'headers': headers, 'ct': ct.get(chassis_id, [])}
    ips = {c.id: c.ip for c in nb.list('chassis')}
    by_ip = {ip: chassis for chassis, ip in ips.items()}
    for _ in range(MAX_HOPS):
        why = agent_down(nb, chassis_id, down_time)
        if why:
            hops.append({'chassis': chassis_id, 'error': why})
            break
        started = time.monotonic()
        result = requests.ask(nb.client, nb.store.layout, chassis_id,
                              request, timeout)
        if result is None:
            hops.append({'chassis': chassis_id, 'error': f'chassis '
                         f'{chassis_id}: {BINARY} did not answer within '
                         f'{timeout:g} s (no trace)'})
            break
        result['seconds'] = round(time.monotonic() - started, 3)
        hops.append({'chassis': chassis_id, 'result': result})
        if 'error' in result:
            break
        tunnel = next((o for o in result['outcome'].get('outputs', ())
                       if o['kind'] == 'tunnel'), None)
        if tunnel is None:
            break
        chassis_id = by_ip.get(tunnel.get('tun_dst'))
        if chassis_id is None:
            hops.append({'chassis': None, 'error': f'the tunnel goes to '
                         f'{tunnel.get("tun_dst")}, the address of no '
                         'chassis'})
            break
        request = {'tunnel': {
            'type': tunnel['type'], 'tun_id': tunnel.get('tun_id'),
            'tun_src': ips.get(hops[-1]['chassis']),
            'tun_dst': tunnel.get('tun_dst'),
            'tun_metadata0': tunnel.get('tun_metadata0')},
            'headers': _carried(headers, result.get('final_flow') or {}),
            'ct': ct.get(chassis_id, [])}
    return hops


def _carried(headers, final):
    out = dict(headers)
    for field, name in CARRIED[headers['version']].items():
        if final.get(field):
            out[name] = int(final[field]) if name == 'nw_ttl' \
                else final[field]
    return out


def verdict(hops):
    """(verdict, where): 'delivered' / 'out' / 'dropped' / 'controller' /
    'incomplete', with the hop and hit it was decided at."""
    if not hops:
        return 'incomplete', None
    last = hops[-1]
    result = last.get('result')
    if result is None or 'error' in result:
        return 'incomplete', last
    outcome = result['outcome']
    kind = outcome['kind']
    if kind == 'provider':
        return 'out', last
    if kind in ('delivered', 'dropped', 'controller'):
        return kind, last
    return 'incomplete', last


def last_hit(hop, table=None):
    hits = [h for h in hop['result']['hits'] if h['bridge'] is not None and
            h.get('stage')]
    if table is not None:
        hits = [h for h in hits if h['table'] == table] or hits
    return hits[-1] if hits else None


def describe_hit(hit):
    if hit is None:
        return 'no flow'
    owners = ', '.join(
        f'{o["table"] or "key"} {o["name"] + " " if o.get("name") else ""}'
        f'({o["id"]})' for o in hit.get('objects') or [])
    return (f'table {pl.name(hit["table"])} flow "{hit["match"] or "*"}, '
            f'priority {hit["priority"]}" of app {hit.get("app", "?")}'
            f'{" for " + owners if owners else ""}'
            f'{" (stale generation)" if hit.get("stale") else ""}')


def disagreement(logical, hops):
    """One line when the model and the switches part, else None."""
    phys, hop = verdict(hops)
    if phys == 'incomplete':
        return None
    chassis = hop['chassis']
    outcome = hop['result']['outcome']
    if logical.delivered and phys in ('dropped', 'controller'):
        hit = last_hit(hop, outcome.get('table'))
        what = 'drops' if phys == 'dropped' else 'sends to the controller'
        return (f'DISAGREE: the model says {logical.verdict}, but chassis '
                f'{chassis} {what} it at {describe_hit(hit)}')
    left = any(s.table == pl.EGRESS_PROVIDER for s in logical.steps[:-1])
    if phys == 'out' and left:
        return None     # the switches' part ends where the packet leaves
    if not logical.delivered and phys in ('delivered', 'out'):
        return (f'DISAGREE: the model drops it at '
                f'{pl.name(logical.last.table)} ({logical.last.text}), but '
                f'chassis {chassis} {_where(outcome)}')
    if not logical.delivered and phys in ('dropped', 'controller') and \
            outcome.get('table') != logical.last.table:
        hit = last_hit(hop, outcome.get('table'))
        return (f'DISAGREE: the model drops it at '
                f'{pl.name(logical.last.table)}, chassis {chassis} at '
                f'{describe_hit(hit)}')
    if phys == 'delivered' and logical.verdict == 'delivered':
        want = logical.last.objects[0][1] if logical.last.objects else None
        got = [o.get('port') for o in outcome.get('outputs', ())]
        if want and want not in got:
            return (f'DISAGREE: the model delivers to port {want}, chassis '
                    f'{chassis} {_where(outcome)}')
    return None


def _where(outcome):
    parts = []
    for o in outcome.get('outputs', ()):
        if o['kind'] == 'delivered':
            parts.append(f'delivers it to port {o.get("name") or ""} '
                         f'({o.get("port")}, ofport {o.get("ofport")})')
        elif o['kind'] == 'provider':
            parts.append(f'sends it out to provider network {o["physnet"]}')
        else:
            parts.append(f'outputs it to {o.get("port") or o["kind"]}')
    return '; '.join(parts) or 'forwards it'


def text(hops):
    """The physical hops as lines."""
    lines = []
    for hop in hops:
        if 'error' in hop:
            lines.append(f'  {hop["error"]}')
            continue
        result = hop['result']
        if 'error' in result:
            lines.append(f'  chassis {hop["chassis"]}: {result["error"]}')
            continue
        lines.append(f'  chassis {hop["chassis"]} ({result["seconds"]} s): '
                     f'ofproto/trace br-int {result["flow"]}')
        for hit in result['hits']:
            if hit['bridge'] != 'br-int':
                continue
            owners = ', '.join(
                f'{o["name"] or o["id"]}' for o in hit.get('objects') or [])
            tag = f'{hit.get("app", "-")}' + (f' [{owners}]' if owners
                                               else '')
            if hit.get('stale'):
                tag += ' STALE'
            lines.append(f'    {hit["table"]:3d} {hit["stage"] or "":<17} '
                         f'{tag:<40} {hit["match"] or "*"}, priority '
                         f'{hit["priority"]}')
            lines.append(f'        {", ".join(hit["actions"]) or "drop"}')
        outcome = result['outcome']
        if outcome['kind'] in ('dropped', 'controller'):
            lines.append(f'    => {outcome["kind"]} at table '
                         f'{pl.name(outcome["table"])}')
        else:
            lines.append(f'    => {_where(outcome)}' if outcome['kind'] !=
                         'tunnel' else '    => into the tunnel: ' + ', '.join(
                             f'{k}={v}' for k, v in outcome['outputs'][0]
                             .items() if k != 'kind'))
    return '\n'.join(lines)
