"""Shared fixtures: a real ZooKeeper (Debian's package) per test session,
and a fresh NB root per test so tests never see each other's data."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT = os.path.join(ROOT, 'agent')
sys.path.insert(0, AGENT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lab_harness import zookeeper  # noqa: E402


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


@pytest.fixture
def dfctl(dfctl_env):
    """dfctl as an operator runs it: a subprocess; fails unless it exits
    with expect."""
    def run(*args, expect=0):
        proc = subprocess.run([sys.executable, '-m', 'dragonflow.cli.dfctl',
                               *args], env=dfctl_env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == expect, (proc.stdout, proc.stderr)
        return proc
    return run


# --- packages built from this tree (packaging and deployment tests) ------
BUILD_TOOLS = ('dpkg-buildpackage', 'lintian', 'rpmbuild', 'rpmlint',
               'createrepo_c', 'apt-ftparchive', 'git')


def tools_missing():
    return not all(shutil.which(t) for t in BUILD_TOOLS) or \
        not os.path.isdir(os.path.join(ROOT, '.git'))


def build(tree):
    proc = subprocess.run([os.path.join(tree, 'packaging', 'build-packages')],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return os.path.join(tree, 'dist')


def bump_version(tree, new):
    """Set the version (in the package) and add its changelog entry."""
    init = os.path.join(tree, 'agent', 'dragonflow', '__init__.py')
    with open(init) as f:
        text = f.read()
    with open(init, 'w') as f:
        f.write(re.sub(r"__version__ = ['\"][^'\"]+['\"]",
                       f"__version__ = '{new}'", text))
    changelog = os.path.join(tree, 'packaging', 'deb', 'debian', 'changelog')
    with open(changelog) as f:
        old = f.read()
    with open(changelog, 'w') as f:
        f.write(f'dragonflow ({new}) unstable; urgency=medium\n\n'
                f'  * Test build {new} for upgrade tests.\n\n'
                ' -- Dragonflow lean developers <dragonflow@example.org>  '
                + time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())
                + '\n\n' + old)


@pytest.fixture(scope='session')
def dist():
    if tools_missing():
        pytest.skip('packaging tools or git checkout missing '
                    '(make packaging-deps)')
    return build(ROOT)


@pytest.fixture(scope='session')
def dist_next(dist):
    """Packages of the next version, built from a copy of this tree."""
    work = tempfile.mkdtemp(prefix='df-next-')
    tree = os.path.join(work, 'dragonflow')
    subprocess.run(['git', 'clone', '-q', ROOT, tree], check=True)
    # The clone has the committed tree; carry uncommitted edits over too.
    files = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, check=True,
                           capture_output=True).stdout.split(b'\0')
    for name in filter(None, files):
        src = os.path.join(ROOT, name.decode())
        if os.path.isfile(src):
            shutil.copy2(src, os.path.join(tree, name.decode()))
    version = __import__('dragonflow').__version__
    major, minor, patch = version.split('.')[:3]
    new = f'{major}.{minor}.{int(patch) + 1}'
    bump_version(tree, new)
    yield build(tree), new
    shutil.rmtree(work, ignore_errors=True)
