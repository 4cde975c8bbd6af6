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
