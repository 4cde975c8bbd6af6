"""The HTML pages of dfctl trace/check/topology, opened in a real headless
Chromium (selenium + chromium-driver): no console errors, the failing hop
carries the reason, clicking it shows its flows; screenshots are saved as
test artifacts (``DF_ARTIFACT_DIR``, default /var/tmp/df-artifacts)."""
import os
import shutil

import pytest

import report_world
from dragonflow.trace import report
from test_trace import routed  # noqa: F401  (the routed pair fixture)

if not shutil.which('chromedriver'):
    pytest.skip('needs chromium-driver', allow_module_level=True)
# The PyPI run's venv has no selenium: the pages are checked in the main run.
pytest.importorskip('selenium')

ARTIFACTS = os.environ.get('DF_ARTIFACT_DIR', '/var/tmp/df-artifacts')


@pytest.fixture(scope='module')
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = '/usr/bin/chromium'
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu',
                '--window-size=1600,1000'):
        options.add_argument(arg)
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(service=Service('/usr/bin/chromedriver'),
                              options=options)
    yield driver
    driver.quit()


def _open(browser, path, shot):
    browser.get(f'file://{path}')
    errors = [e for e in browser.get_log('browser')
              if e['level'] in ('SEVERE', 'ERROR')]
    assert errors == [], errors
    os.makedirs(ARTIFACTS, exist_ok=True)
    browser.save_screenshot(os.path.join(ARTIFACTS, shot))


def test_trace_page_shows_the_failing_hop_and_its_flows(
        routed, dfctl_verdict, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    a, b, _ = routed
    page = tmp_path / 'trace.html'
    code, out = dfctl_verdict('trace', '--from', a.port.id, '--to',
                              b.port.id, '--protocol', 'tcp', '--dport',
                              '8080', '--physical', '--html', str(page))
    assert code == 1
    _open(browser, page, 'trace-report.png')
    failed = browser.find_elements(By.CSS_SELECTOR, '.hop.failed')
    assert len(failed) == 1
    reason = out['logical']['steps'][-1]['text']
    assert failed[0].get_attribute('data-reason') == reason
    assert 'no ingress rule of groups web-trace' in reason
    row = browser.find_element(By.CSS_SELECTOR, 'tr.failed')
    assert reason in row.text
    assert 'dropped at 110 (ingress_sg)' in \
        browser.find_element(By.ID, 'verdict').text
    failed[0].click()
    details = browser.find_element(By.ID, 'details').text
    assert 'flows hit in table 110 on ch2:' in details
    assert 'security_groups' in details and 'drop' in details
    # the hop where routing happened shows the router's flow on ch1
    routed_hop = next(i for i, s in enumerate(out['logical']['steps'])
                      if s['stage'] == 'l3_lookup')
    browser.find_element(By.ID, f'hop-{routed_hop}').click()
    assert 'flows hit in table 60 on ch1:' in \
        browser.find_element(By.ID, 'details').text
    assert len(browser.find_elements(By.CSS_SELECTOR, '.chassis')) == 3


def test_check_and_topology_pages(
        routed, dfctl_verdict, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    page = tmp_path / 'check.html'
    code, out = dfctl_verdict('check', '--html', str(page))
    _open(browser, page, 'check-report.png')
    rows = browser.find_elements(By.CSS_SELECTOR, '#findings tr.failed')
    assert len(rows) == len(out['findings'])
    topo = tmp_path / 'topology.html'
    dfctl_verdict('topology', '--html', str(topo))
    _open(browser, topo, 'topology-report.png')
    chassis = browser.find_elements(By.CSS_SELECTOR, '.chassis.up')
    assert sorted(c.get_attribute('id') for c in chassis) == [
        'chassis-ch1', 'chassis-ch2', 'chassis-ch3']
    assert 'net-10.71.0.0/24: 1 port' in \
        browser.find_element(By.ID, 'chassis-ch1').text
    assert browser.find_elements(By.CSS_SELECTOR, '.router')


def test_ten_chassis_and_two_hundred_ports_fit_the_window(browser, tmp_path):
    from selenium.webdriver.common.by import By
    page = tmp_path / 'big.html'
    report.write(page, report.topology_page(report_world.topo()))
    _open(browser, page, 'topology-10-chassis.png')
    svg = browser.find_element(By.ID, 'topology')
    assert svg.size['width'] <= 1600 and svg.size['height'] <= 1000
    assert len(browser.find_elements(By.CSS_SELECTOR, '.chassis')) == 10
    assert len(browser.find_elements(By.CSS_SELECTOR, '.tunnel.down')) == 1
