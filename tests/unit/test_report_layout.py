"""The HTML report's layout stays readable at 10 chassis and 200 ports,
and every NB text is escaped (the pages are opened in a real Chromium by
tests/lab/test_report.py)."""
import re

from dragonflow.trace import report
from report_world import topo


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
