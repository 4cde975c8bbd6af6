"""Shared fixtures: a real ZooKeeper (Debian's package) per test session,
and a fresh NB root per test so tests never see each other's data."""
import os
import shutil
import sys
import tempfile
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT = os.path.join(ROOT, 'agent')
sys.path.insert(0, AGENT)

from dragonflow.lab import zookeeper  # noqa: E402


def pytest_report_header(config):
    import kazoo
    import oslo_config
    return (f'python {sys.version.split()[0]} ({sys.executable}); '
            f'kazoo {getattr(kazoo, "__version__", "?")} from '
            f'{os.path.dirname(kazoo.__file__)}; oslo.config from '
            f'{os.path.dirname(oslo_config.__file__)}')


@pytest.fixture(scope='session')
def workdir():
    path = tempfile.mkdtemp(prefix='df-tests-')
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='session')
def zk_server(workdir):
    server = zookeeper.ZkServer(os.path.join(workdir, 'zk')).start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()


@pytest.fixture
def nb_root():
    return f'/dftest-{uuid.uuid4().hex[:12]}'


@pytest.fixture
def zk_client(zk_server):
    from dragonflow.store import zk
    client = zk.make_client(zk_server.address, timeout=10)
    client.start(timeout=10)
    yield client
    client.stop()
    client.close()


@pytest.fixture
def nb(zk_client, nb_root):
    from dragonflow.nb.api import NbApi
    api = NbApi(zk_client, nb_root)
    yield api
    zk_client.delete(nb_root, recursive=True)


@pytest.fixture
def dfctl_env(zk_server, nb_root):
    """Environment for running dfctl as a subprocess against zk_server."""
    env = dict(os.environ)
    env['PYTHONPATH'] = AGENT + os.pathsep + env.get('PYTHONPATH', '')
    env['OS_DF__REMOTE_DB_HOSTS'] = zk_server.address
    env['OS_DF__NB_ROOT'] = nb_root
    return env
