"""Package builds shared by the packaging tests: this tree's version, and
the same tree with the next version (for upgrade tests)."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
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
    """Set the version in its three places (package, changelog, spec)."""
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
                'Tue, 01 Dec 2026 12:00:00 +0000\n\n' + old)
    spec = os.path.join(tree, 'packaging', 'rpm', 'dragonflow.spec')
    with open(spec) as f:
        text = f.read()
    with open(spec, 'w') as f:
        f.write(re.sub(r'^Version: .*$', f'Version:        {new}', text,
                       flags=re.M))


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
