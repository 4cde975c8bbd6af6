"""testinfra suite for deployed nodes: run it against an inventory with
--hosts=ansible://... --ansible-inventory=... (playbooks/verify.yml does).
In a plain test run (no --hosts) it would check the test machine itself,
so it is skipped there."""
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(config, items):
    if config.getoption('hosts', default=None):
        return
    skip = pytest.mark.skip(reason='deployed-node checks: give --hosts '
                            '(playbooks/verify.yml runs them)')
    for item in items:
        if str(item.fspath).startswith(HERE + os.sep):
            item.add_marker(skip)
