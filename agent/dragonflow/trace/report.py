"""Self-contained HTML pages for ``dfctl trace --html``, ``dfctl check
--html`` and ``dfctl topology --html``: one file, inline SVG, a few lines
of inline script, nothing fetched from the network.

The topology is drawn with a small layout of its own (no Graphviz): the
routers and networks in a band at the top (a line per router interface),
the chassis below in rows of five, each listing its ports grouped per
network ("blue: 12 ports", so 200 ports stay readable), coloured by
health (green up, red down, with since when in the tooltip); tunnels
whose BFD session is not up are red dashed lines between their chassis.
A trace adds the packet's path hop by hop across chassis: a box per
stage, green when passed, red where it is dropped with the reason and
the responsible object; clicking a hop shows what decided it and the
real flows the packet hit in that table on that chassis.
"""
import html
import json
import time

from dragonflow.nb import health

COLS = 5                 # chassis per row
CH_W, NET_W, HOP_W = 230, 150, 150
STYLE = """
body{font-family:sans-serif;margin:16px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:24px}
.verdict{font-size:16px;padding:8px;border-radius:4px}
.ok{background:#e6f4ea} .bad{background:#fde8e8}
.disagree{background:#fff3cd;padding:8px;border:1px solid #e0b000}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
tr.failed td{background:#fde8e8;font-weight:bold}
.hop{cursor:pointer} #details{white-space:pre-wrap;font-family:monospace;
font-size:12px;background:#f6f6f6;padding:8px;min-height:40px}
svg text{font-size:12px}
"""
SCRIPT = """
const data = JSON.parse(document.getElementById('data').textContent);
function show(i) {
  const step = data.steps[i];
  let out = (i + 1) + '. table ' + step.table + ' ' + step.stage + ' [' +
      (step.chassis || 'unbound') + '] ' + step.verdict + '\\n' + step.text;
  if (step.objects.length) {
    out += '\\n\\nobjects: ' + step.objects.map(
        o => o.table + ' ' + (o.name ? o.name + ' ' : '') + '(' + o.id + ')'
    ).join(', ');
  }
  const flows = (data.flows[step.chassis] || []).filter(
      h => h.table === step.table);
  out += '\\n\\nflows hit in table ' + step.table + ' on ' +
      (step.chassis || '-') + ':';
  if (!flows.length) { out += ' (none traced)'; }
  for (const h of flows) {
    out += '\\n  ' + (h.app || '-') + ' ' + (h.match || '*') +
        ', priority ' + h.priority + '\\n      ' +
        (h.actions.join(', ') || 'drop');
  }
  document.getElementById('details').textContent = out;
}
document.querySelectorAll('.hop').forEach(
    el => el.addEventListener('click', () => show(+el.dataset.hop)));
"""


def _e(text):
    return html.escape(str(text), quote=True)


def _at(ts):
    return time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ts)) \
        if ts else '?'


def topology(nb, down_time, answers=None):
    """The data the pages draw: chassis with health and ports per
    network, networks, routers and their interfaces, BFD per tunnel."""
    services = health.service_status(nb, down_time)
    chassis = health.chassis_status(nb, down_time, services=services)
    networks = sorted(nb.list('logical_switch'),
                      key=lambda n: (n.name or '', n.id))
    ports = nb.list('logical_port')
    counts = {}
    for port in ports:
        key = (port.binding_chassis, port.network_id)
        counts[key] = counts.get(key, 0) + 1
    names = {n.id: n.name or n.id[:8] for n in networks}
    routers = []
    rports = nb.list('logical_router_port')
    for router in sorted(nb.list('logical_router'),
                         key=lambda r: (r.name or '', r.id)):
        nets = sorted({p.network_id for p in rports
                       if p.router_id == router.id})
        gw = router.external_gateway or {}
        if gw.get('network_id'):
            nets.append(gw['network_id'])
        routers.append({'id': router.id, 'name': router.name or router.id[:8],
                        'networks': nets})
    tunnels = []
    for local, answer in sorted((answers or {}).items()):
        for remote, bfd in sorted(((answer or {}).get('bfd') or {}).items()):
            tunnels.append({'from': local, 'to': remote,
                            'state': bfd.get('state'),
                            'diagnostic': bfd.get('diagnostic')})
    return {
        'chassis': [dict(c, ports={names.get(n, n): k for (ch, n), k in
                                   counts.items() if ch == c['id']})
                    for c in chassis],
        'unbound': sum(k for (ch, _), k in counts.items() if not ch),
        'networks': [{'id': n.id, 'name': names[n.id],
                      'type': n.network_type, 'segment': n.segmentation_id,
                      'external': n.external} for n in networks],
        'routers': routers, 'tunnels': tunnels,
        'services': services}


def topology_svg(topo, bad_chassis=()):
    nets = topo['networks']
    x_of = {n['id']: 20 + i * NET_W + NET_W // 2 for i, n in enumerate(nets)}
    routers = topo['routers']
    chassis = topo['chassis']
    rows = (len(chassis) + COLS - 1) // COLS
    heights = [44 + 16 * max(1, len(c['ports'])) for c in chassis]
    row_h = max(heights, default=60) + 30
    width = max(len(nets) * NET_W, min(len(chassis), COLS) * (CH_W + 20),
                len(routers) * NET_W) + 40
    height = 230 + rows * row_h
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" id="topology" '
           f'width="{width}" height="{height}">']
    for i, r in enumerate(routers):
        rx = 20 + i * NET_W + NET_W // 2
        for net_id in r['networks']:
            if net_id in x_of:
                out.append(f'<line x1="{rx}" y1="50" x2="{x_of[net_id]}" '
                           'y2="125" stroke="#888"/>')
        out.append(f'<g class="router"><title>router {_e(r["name"])} '
                   f'({_e(r["id"])})</title><ellipse cx="{rx}" cy="40" '
                   'rx="60" ry="18" fill="#e8eefc" stroke="#4a6fd0"/>'
                   f'<text x="{rx}" y="44" text-anchor="middle">'
                   f'{_e(r["name"][:18])}</text></g>')
    for n in nets:
        x = x_of[n['id']]
        label = f'{n["name"][:16]}'
        ext = ' ext' if n['external'] else ''
        kind = f'{n["type"]} {n["segment"] or ""}{ext}'
        out.append(f'<g class="network"><title>network {_e(n["name"])} '
                   f'({_e(n["id"])})</title><rect x="{x - 65}" y="125" '
                   'width="130" height="40" rx="6" fill="#f3f3f3" '
                   f'stroke="#666"/><text x="{x}" y="141" '
                   f'text-anchor="middle">{_e(label)}</text><text x="{x}" '
                   f'y="157" text-anchor="middle" fill="#666">{_e(kind)}'
                   '</text></g>')
    centre = {}
    for i, c in enumerate(chassis):
        x = 20 + (i % COLS) * (CH_W + 20)
        y = 200 + (i // COLS) * row_h
        centre[c['id']] = (x + CH_W // 2, y + heights[i])   # bottom
        up = c['state'] == 'up' and c['id'] not in bad_chassis
        fill, stroke = ('#e6f4ea', '#2e7d32') if up else ('#fde8e8', '#c62828')
        lines = [f'{net}: {k} port{"s" if k != 1 else ""}'
                 for net, k in sorted(c['ports'].items())] or ['no ports']
        body = ''.join(f'<text x="{x + 10}" y="{y + 40 + 16 * j}">'
                       f'{_e(t)}</text>' for j, t in enumerate(lines))
        out.append(
            f'<g class="chassis {"up" if up else "down"}" '
            f'id="chassis-{_e(c["id"])}"><title>chassis {_e(c["id"])} '
            f'({_e(c["ip"])}): {_e(c["state"])} since {_at(c["since"])}'
            f'</title><rect x="{x}" y="{y}" width="{CH_W}" '
            f'height="{heights[i]}" rx="8" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="2"/><text x="{x + 10}" y="{y + 20}" '
            f'font-weight="bold">{_e(c["id"])} {_e(c["ip"])} '
            f'({_e(c["state"])})</text>{body}</g>')
    for t in topo['tunnels']:
        if t['state'] == 'up' or t['from'] not in centre or \
                t['to'] not in centre:
            continue
        # A curve under the two boxes, so it crosses no text.
        (x1, y1), (x2, y2) = centre[t['from']], centre[t['to']]
        mx, my = (x1 + x2) // 2, max(y1, y2) + 24
        out.append(f'<path class="tunnel down" d="M{x1},{y1} Q{mx},{my} '
                   f'{x2},{y2}" fill="none" stroke="#c62828" '
                   f'stroke-width="3" stroke-dasharray="8,5"><title>tunnel '
                   f'{_e(t["from"])} -> {_e(t["to"])}: BFD '
                   f'{_e(t["state"])} ({_e(t["diagnostic"])})</title></path>'
                   f'<text x="{mx}" y="{my - 2}" text-anchor="middle" '
                   f'fill="#c62828">BFD {_e(t["state"])}</text>')
    out.append('</svg>')
    return ''.join(out)


def path_svg(logical):
    steps = logical['steps']
    width = 40 + len(steps) * HOP_W
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" id="path" '
           f'width="{width}" height="150">']
    start = 0
    for i in range(1, len(steps) + 1):
        if i == len(steps) or steps[i]['chassis'] != steps[start]['chassis']:
            x = 20 + start * HOP_W
            w = (i - start) * HOP_W - 10
            out.append(f'<rect x="{x - 5}" y="5" width="{w + 10}" '
                       'height="140" rx="8" fill="none" stroke="#999" '
                       f'stroke-dasharray="4,3"/><text x="{x}" y="20" '
                       'font-weight="bold">chassis '
                       f'{_e(steps[start]["chassis"] or "(unbound)")}</text>')
            start = i
    for i, step in enumerate(steps):
        x = 20 + i * HOP_W
        verdict = step['verdict']
        fill = {'dropped': '#f8c9c9', 'delivered': '#b9e4c1',
                'out': '#b9e4c1'}.get(verdict, '#e6f4ea')
        cls = 'hop failed' if verdict == 'dropped' else 'hop'
        reason = step['text'] if verdict == 'dropped' else ''
        if i:
            out.append(f'<line x1="{x - 10}" y1="75" x2="{x}" y2="75" '
                       'stroke="#444" stroke-width="2"/>')
        out.append(
            f'<g class="{cls}" data-hop="{i}" data-reason="{_e(reason)}" '
            f'id="hop-{i}"><title>{_e(step["text"])}</title>'
            f'<rect x="{x}" y="35" width="{HOP_W - 20}" height="80" rx="6" '
            f'fill="{fill}" stroke="#444"/><text x="{x + 6}" y="53">'
            f'{step["table"]} {_e(step["stage"])}</text><text x="{x + 6}" '
            f'y="71" font-weight="bold">{_e(verdict)}</text>'
            f'<text x="{x + 6}" y="89" fill="#444">'
            f'{_e(_first_object(step)[:20])}</text></g>')
    out.append('</svg>')
    return ''.join(out)


def _first_object(step):
    for obj in step['objects']:
        return f'{obj["table"].replace("logical_", "")} ' \
            f'{obj["name"] or obj["id"][:8]}'
    return ''


def _page(title, body, data=None):
    blob = ''
    if data is not None:
        blob = ('<script type="application/json" id="data">' +
                json.dumps(data, default=str).replace('</', '<\\/') +
                f'</script><script>{SCRIPT}</script>')
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8">'
            f'<title>{_e(title)}</title><style>{STYLE}</style></head>'
            f'<body><h1>{_e(title)}</h1>{body}{blob}</body></html>')


def _services_table(topo):
    rows = ''.join(
        f'<tr class="{"" if s["state"] == "up" else "failed"}"><td>'
        f'{_e(s["id"])}</td><td>{_e(s["chassis"])}</td><td>'
        f'{_e(s["state"])}</td><td>{_at(s["since"])}</td></tr>'
        for s in topo['services'])
    return ('<h2>Services</h2><table id="services"><tr><th>service</th>'
            f'<th>chassis</th><th>state</th><th>since</th></tr>{rows}'
            '</table>')


def trace_page(topo, logical, hops=None, disagreement=None):
    """The trace as a page: verdict, disagreement, the path, each step
    (click a hop for its flows), the topology."""
    flows = {}
    for hop in hops or ():
        result = hop.get('result') or {}
        flows[hop.get('chassis')] = [h for h in result.get('hits', ())
                                     if h.get('bridge') == 'br-int']
    ok = logical['verdict'] in ('delivered', 'out')
    body = [f'<p class="verdict {"ok" if ok else "bad"}" id="verdict">'
            f'{_e(logical["summary"])}</p>']
    if disagreement:
        body.append(f'<p class="disagree" id="disagreement">'
                    f'{_e(disagreement)}</p>')
    body.append('<h2>Path (click a hop)</h2>' + path_svg(logical) +
                '<div id="details">click a hop to see what decided it and '
                'the flows it hit</div>')
    rows = ''.join(
        f'<tr id="step-{i}" '
        f'class="{"failed" if s["verdict"] == "dropped" else ""}">'
        f'<td>{i + 1}</td><td>{s["table"]} {_e(s["stage"])}</td><td>'
        f'{_e(s["chassis"] or "-")}</td><td>{_e(s["verdict"])}</td><td>'
        f'{_e(s["text"])}</td></tr>' for i, s in enumerate(logical['steps']))
    body.append('<h2>Steps</h2><table id="steps"><tr><th>#</th><th>stage'
                '</th><th>chassis</th><th>verdict</th><th>what decided'
                f'</th></tr>{rows}</table>')
    for hop in hops or ():
        if 'error' in hop or 'error' in (hop.get('result') or {}):
            reason = hop.get('error') or hop['result']['error']
            body.append(f'<p class="bad hop-error">{_e(reason)}</p>')
    body.append('<h2>Topology</h2>' + topology_svg(topo))
    return _page('dfctl trace', ''.join(body),
                 {'steps': logical['steps'], 'flows': flows})


def check_page(topo, findings):
    bad = {f.subject for f in findings}
    rows = ''.join(f'<tr class="failed"><td>{_e(f.kind)}</td><td>'
                   f'{_e(f.subject)}</td><td>{_e(f.text)}</td></tr>'
                   for f in findings)
    verdict = (f'<p class="verdict bad" id="verdict">{len(findings)} '
               'problem(s)</p>' if findings else
               '<p class="verdict ok" id="verdict">nothing wrong found</p>')
    body = (verdict + '<h2>Findings</h2><table id="findings"><tr><th>kind'
            f'</th><th>subject</th><th>what is wrong</th></tr>{rows}</table>'
            '<h2>Topology</h2>' + topology_svg(topo, bad) +
            _services_table(topo))
    return _page('dfctl check', body)


def topology_page(topo):
    return _page('dfctl topology', topology_svg(topo) +
                 _services_table(topo) +
                 f'<p>{topo["unbound"]} port(s) bound to no chassis</p>')


def write(path, text):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
