"""The roles and playbooks pass ansible-lint (production profile) and a
syntax check."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

if not shutil.which('ansible-lint'):
    pytest.skip('ansible-lint missing (make packaging-deps)',
                allow_module_level=True)


def test_ansible_lint_production_profile():
    proc = subprocess.run(['ansible-lint', '--nocolor'], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize('playbook', ['site.yml', 'verify.yml'])
def test_playbook_syntax(playbook):
    proc = subprocess.run(
        ['ansible-playbook', '--syntax-check', '-i',
         os.path.join(ROOT, 'inventories', 'example', 'hosts.yml'),
         os.path.join(ROOT, 'playbooks', playbook)], cwd=ROOT,
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(ROOT, 'roles')))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(not shutil.which('promtool'), reason='needs promtool '
                    '(Debian prometheus)')
def test_alert_rules_pass_promtool():
    rules = os.path.join(ROOT, 'roles', 'prometheus', 'files',
                         'dragonflow-alerts.yml')
    proc = subprocess.run(['promtool', 'check', 'rules', rules],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'SUCCESS: 4 rules found' in proc.stdout


def test_prometheus_config_renders_and_passes_promtool(tmp_path):
    """The role's prometheus.yml for the lab inventory: every compute's
    agent and the BGP host's df-bgp as targets, valid for promtool."""
    if not shutil.which('promtool'):
        pytest.skip('needs promtool (Debian prometheus)')
    play = tmp_path / 'render.yml'
    play.write_text(f'''
- hosts: zk1
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_vars:
        file: {ROOT}/roles/prometheus/defaults/main.yml
    - ansible.builtin.template:
        src: {ROOT}/roles/prometheus/templates/prometheus.yml.j2
        dest: {tmp_path}/prometheus.yml
        mode: "0644"
      delegate_to: localhost
''')
    proc = subprocess.run(
        ['ansible-playbook', '-i', os.path.join(ROOT, 'inventories', 'lab',
                                                'hosts.yml'), str(play)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    text = (tmp_path / 'prometheus.yml').read_text()
    for target in ('"172.30.210.11:9110"', '"172.30.210.12:9110"',
                   '"172.30.210.11:9111"'):
        assert target in text
    check = subprocess.run(['promtool', 'check', 'config', '--syntax-only',
                            str(tmp_path / 'prometheus.yml')],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
