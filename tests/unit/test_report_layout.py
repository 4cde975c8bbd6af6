"""The HTML report's layout stays readable at 10 chassis and 200 ports,
and every NB text is escaped (the pages are opened in a real Chromium by
tests/lab/test_report.py)."""
import re

from dragonflow.trace import report


def topo(chassis=10, networks=4, ports=200):
    nets = [{'id': f'n{i}', 'name': f'net{i}', 'type': 'geneve',
             'segment': i + 1, 'external': False} for i in range(networks)]
    per = ports // chassis
    return {
        'chassis': [{'id': f'ch{i}', 'ip': f'192.0.2.{i}', 'state':
                     'up' if i else 'down', 'since': 0, 'ports': {
                         n['name']: per // networks for n in nets}}
                    for i in range(chassis)],
        'networks': nets, 'unbound': 0, 'services': [],
        'routers': [{'id': 'r', 'name': 'r1',
                     'networks': [n['id'] for n in nets]}],
        'tunnels': [{'from': 'ch1', 'to': 'ch2', 'state': 'down',
                     'diagnostic': 'Control Detection Time Expired'},
                    {'from': 'ch1', 'to': 'ch3', 'state': 'up',
                     'diagnostic': None}]}


def test_ten_chassis_two_hundred_ports_in_rows_grouped_by_network():
    svg = report.topology_svg(topo())
    width = int(re.search(r'width="(\d+)"', svg).group(1))
    height = int(re.search(r'height="(\d+)"', svg).group(1))
    assert svg.count('class="chassis ') == 10
    assert width <= 5 * (report.CH_W + 20) + 40 and height < 800
    assert svg.count('net0: 5 ports') == 10          # grouped, not 200 boxes
    assert svg.count('class="chassis down"') == 1
    assert svg.count('class="tunnel down"') == 1     # only tunnels not up


def test_texts_are_escaped():
    t = topo(chassis=1, networks=1, ports=1)
    t['networks'][0]['name'] = '<script>alert(1)</script>'
    logical = {'verdict': 'dropped', 'summary': 'x <b>', 'steps': [
        {'table': 5, 'stage': 'port_security', 'verdict': 'dropped',
         'chassis': 'ch0', 'text': 'a "quoted" <reason>',
         'objects': [{'table': 'logical_port', 'id': 'p', 'name': '<p>'}]}]}
    page = report.trace_page(t, logical)
    assert '<script>alert' not in page and '&lt;script&gt;' in page
    assert 'data-reason="a &quot;quoted&quot; &lt;reason&gt;"' in page
    assert '<\\/' not in page.split('id="data">')[0]
