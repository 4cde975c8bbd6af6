"""The daemons import eventlet without its green DNS resolver, pyOpenSSL
and setuptools (dragonflow/lean.py): a third of an idle agent's memory.
Each check runs in a fresh interpreter, since this one has imported
whatever other tests needed."""
import os
import subprocess
import sys

import pytest

AGENT = os.path.join(os.path.dirname(__file__), '..', '..', 'agent')
UNWANTED = ('dns', 'OpenSSL', 'cryptography', 'setuptools', 'pkg_resources',
            'requests')


def loaded(statement):
    """Top-level module names loaded after running statement."""
    out = subprocess.run(
        [sys.executable, '-c', f'{statement}\nimport sys\n'
         'print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))'],
        env=dict(os.environ, PYTHONPATH=AGENT), check=True,
        capture_output=True, text=True).stdout
    return set(out.split())


@pytest.mark.parametrize('module', ['dragonflow.controller.service',
                                    'dragonflow.bgp.service'])
def test_daemon_imports_lean(module):
    found = loaded(f'import {module}\nimport os_ken.base.app_manager')
    assert 'eventlet' in found
    assert not found & set(UNWANTED)


def test_openssl_still_importable_afterwards():
    pytest.importorskip('OpenSSL')
    found = loaded('import dragonflow.lean\nimport OpenSSL')
    assert 'OpenSSL' in found
