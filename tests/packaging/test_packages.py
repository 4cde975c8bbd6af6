"""The DEB and RPM packages, built with the real tools from this tree, and
the local apt and yum repositories laid out for them."""
import glob
import os
import shutil
import subprocess
import tempfile

VERSION = __import__('dragonflow').__version__


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True,
                          **kw).stdout


def deb(dist, name):
    return os.path.join(dist, 'deb', f'{name}_{VERSION}_all.deb')


def rpm(dist, name):
    return os.path.join(dist, 'rpm', f'{name}-{VERSION}-1.noarch.rpm')


def test_all_packages_are_built(dist):
    names = ('python3-dragonflow', 'dragonflow-common',
             'dragonflow-controller', 'dragonflow-l3-agent', 'dragonflow-bgp',
             'dragonflow-cni')
    for name in names:
        assert os.path.exists(deb(dist, name)), name
        assert os.path.exists(rpm(dist, name)), name


def test_the_library_ships_no_lab_and_no_test_tooling(dist):
    files = run('dpkg-deb', '-c', deb(dist, 'python3-dragonflow'))
    modules = [line.split()[-1] for line in files.splitlines()
               if line.endswith('.py')]
    assert any(m.endswith('/dragonflow/controller/pipeline.py')
               for m in modules)
    assert not [m for m in modules if '/lab' in m or 'lab_harness' in m]
    rpm_files = run('rpm', '-qp', '-l', rpm(dist, 'python3-dragonflow'))
    assert '/dragonflow/lab' not in rpm_files and 'lab_harness' not in \
        rpm_files
    for package in ('dragonflow-common', 'dragonflow-controller'):
        assert 'dragonflow-lab' not in run('dpkg-deb', '-c',
                                           deb(dist, package))


def test_man_pages_and_spec_carry_the_package_version(dist):
    man = run('sh', '-c', f'dpkg-deb --fsys-tarfile '
              f'{deb(dist, "dragonflow-common")} | tar -xOf - '
              './usr/share/man/man1/dfctl.1.gz | zcat | head -1')
    assert f'"dragonflow {VERSION}"' in man
    assert run('rpm', '-qp', '--qf', '%{VERSION}',
               rpm(dist, 'dragonflow-common')) == VERSION


def test_lintian_and_rpmlint_report_no_errors(dist):
    with open(os.path.join(dist, 'lintian.txt')) as f:
        assert not [line for line in f if line.startswith('E:')]
    with open(os.path.join(dist, 'rpmlint.txt')) as f:
        text = f.read()
    assert ' 0 errors' in text and ': E: ' not in text


def test_deb_dependencies_are_the_distributions_packages(dist):
    depends = run('dpkg-deb', '-f', deb(dist, 'python3-dragonflow'),
                  'Depends')
    for package in ('python3-kazoo', 'python3-os-ken', 'python3-oslo.config',
                    'python3-ovsdbapp', 'python3-prometheus-client'):
        assert package in depends
    controller = run('dpkg-deb', '-f', deb(dist, 'dragonflow-controller'),
                     'Depends')
    assert 'openvswitch-switch' in controller
    assert 'iproute2' in controller     # the load balancer's prober
    assert f'dragonflow-common (= {VERSION})' in controller


def test_deb_conffile_unit_and_maintainer_scripts(dist):
    with tempfile.TemporaryDirectory() as tmp:
        run('dpkg-deb', '-e', deb(dist, 'dragonflow-common'), tmp)
        with open(os.path.join(tmp, 'conffiles')) as f:
            assert f.read().split() == ['/etc/dragonflow/dragonflow.ini']
        with open(os.path.join(tmp, 'postinst')) as f:
            postinst = f.read()
        assert 'adduser --system --group' in postinst
        # Config ownership only while it is as dpkg unpacked it.
        assert 'if [ "$(stat -c %U:%G /etc/dragonflow/dragonflow.ini)" = ' \
            '"root:root" ]; then' in postinst
    # No state directory: nothing would use it.
    assert 'var/lib/dragonflow' not in run(
        'dpkg-deb', '-c', deb(dist, 'dragonflow-common'))
    with tempfile.TemporaryDirectory() as tmp:
        run('dpkg-deb', '-e', deb(dist, 'dragonflow-controller'), tmp)
        with open(os.path.join(tmp, 'postinst')) as f:
            postinst = f.read()
        # Enabled on install, started; restarted on upgrade.
        assert "deb-systemd-helper enable 'df-local-controller.service'" \
            in postinst
        assert '_dh_action=restart' in postinst and \
            "deb-systemd-invoke $_dh_action 'df-local-controller.service'" \
            in postinst
    files = run('dpkg-deb', '-c', deb(dist, 'dragonflow-controller'))
    assert './lib/systemd/system/df-local-controller.service' in files
    # The program is shared with the L3 flavour: it lives in common.
    assert './usr/bin/df-local-controller' in run(
        'dpkg-deb', '-c', deb(dist, 'dragonflow-common'))


def test_l3_agent_package_runs_the_controller_with_the_l3_app_set(dist):
    package = deb(dist, 'dragonflow-l3-agent')
    files = run('dpkg-deb', '-c', package)
    assert './lib/systemd/system/df-l3-agent.service' in files
    assert 'dragonflow-controller' in run('dpkg-deb', '-f', package,
                                          'Conflicts')
    assert 'dragonflow-l3-agent' in run(
        'dpkg-deb', '-f', deb(dist, 'dragonflow-controller'), 'Conflicts')
    with tempfile.TemporaryDirectory() as tmp:
        run('dpkg-deb', '-x', package, tmp)
        ini = open(os.path.join(tmp, 'etc/dragonflow/l3-agent.ini')).read()
        unit = open(os.path.join(
            tmp, 'lib/systemd/system/df-l3-agent.service')).read()
    apps = [line.split('=', 1)[1].strip().split(',')
            for line in ini.splitlines() if line.startswith('apps_list')][0]
    assert 'l2_normal' in apps and 'l2' not in apps and 'dhcp' not in apps
    assert '--config-file /etc/dragonflow/l3-agent.ini' in unit
    assert 'Conflicts=df-local-controller.service' in unit
    with tempfile.TemporaryDirectory() as tmp:
        run('dpkg-deb', '-e', package, tmp)
        with open(os.path.join(tmp, 'conffiles')) as f:
            assert f.read().split() == ['/etc/dragonflow/l3-agent.ini']
    rpm_package = rpm(dist, 'dragonflow-l3-agent')
    assert 'dragonflow-controller' in run('rpm', '-qp', '--conflicts',
                                          rpm_package)
    assert '/etc/dragonflow/l3-agent.ini' in run('rpm', '-qp',
                                                 '--configfiles', rpm_package)


def test_rpm_requires_provides_files_and_scriptlets(dist):
    requires = run('rpm', '-qp', '--requires', rpm(dist, 'python3-dragonflow'))
    for package in ('python3-kazoo', 'python3-os-ken', 'python3-oslo-config',
                    'python3-ovsdbapp', 'python3-prometheus_client'):
        assert package in requires
    controller = rpm(dist, 'dragonflow-controller')
    assert 'openvswitch' in run('rpm', '-qp', '--requires', controller)
    assert f'dragonflow-controller = {VERSION}-1' in run(
        'rpm', '-qp', '--provides', controller)
    assert '/usr/lib/systemd/system/df-local-controller.service' in run(
        'rpm', '-qp', '-l', controller)
    scripts = run('rpm', '-qp', '--scripts', controller)
    assert 'systemctl' in scripts and 'try-restart' in scripts
    common = rpm(dist, 'dragonflow-common')
    assert 'useradd -r -g dragonflow' in run('rpm', '-qp', '--scripts', common)
    assert 'shadow-utils' in run('rpm', '-qp', '--requires', common)
    configs = run('rpm', '-qp', '--configfiles', common)
    assert '/etc/dragonflow/dragonflow.ini' in configs


def test_bgp_package_carries_its_daemon_and_unit(dist):
    files = run('dpkg-deb', '-c', deb(dist, 'dragonflow-bgp'))
    assert './usr/bin/df-bgp' in files
    assert './lib/systemd/system/df-bgp.service' in files
    assert '/usr/lib/systemd/system/df-bgp.service' in run(
        'rpm', '-qp', '-l', rpm(dist, 'dragonflow-bgp'))


def test_cni_package_puts_the_plugin_where_engines_look(dist):
    files = run('dpkg-deb', '-c', deb(dist, 'dragonflow-cni'))
    assert './usr/bin/dragonflow-cni' in files
    assert './usr/lib/cni/dragonflow -> ../../bin/dragonflow-cni' in files
    assert './usr/share/doc/dragonflow-cni/examples/dragonflow.conflist' \
        in files
    assert './lib/systemd/system/dragonflow-cni-gc.timer' in files
    assert 'dragonflow-cni-gc.timer' in run(
        'sh', '-c', f'dpkg-deb -I {deb(dist, "dragonflow-cni")} postinst')
    listed = run('rpm', '-qp', '-l', rpm(dist, 'dragonflow-cni'))
    assert '/usr/libexec/cni/dragonflow' in listed
    assert '/usr/bin/dragonflow-cni' in listed
    assert '/usr/lib/systemd/system/dragonflow-cni-gc.timer' in listed


def test_rpm_file_layout_installs_into_a_root(dist, tmp_path):
    run('rpm', '-i', '--nodeps', '--noscripts', '--root', str(tmp_path),
        *glob.glob(os.path.join(dist, 'rpm', '*.rpm')))
    for path in ('usr/bin/dfctl', 'usr/bin/df-local-controller',
                 'etc/dragonflow/dragonflow.ini',
                 'usr/lib/systemd/system/df-local-controller.service'):
        assert (tmp_path / path).exists(), path
    assert list(tmp_path.glob('usr/lib/python3*/site-packages/dragonflow/'
                              'nb/api.py'))


def test_apt_repository_serves_the_packages(dist, tmp_path):
    lists = tmp_path / 'lists'
    (lists / 'partial').mkdir(parents=True)
    sources = tmp_path / 'sources.list'
    sources.write_text(f'deb [trusted=yes] file:{dist}/deb ./\n')
    opts = ['-o', f'Dir::Etc::SourceList={sources}',
            '-o', 'Dir::Etc::SourceParts=/nonexistent',
            '-o', f'Dir::State::Lists={lists}']
    run('apt-get', *opts, 'update')
    policy = run('apt-cache', *opts, 'policy', 'dragonflow-controller')
    assert f'Candidate: {VERSION}' in policy


def test_yum_repository_metadata_lists_the_packages(dist):
    repodata = os.path.join(dist, 'rpm', 'repodata')
    assert os.path.exists(os.path.join(repodata, 'repomd.xml'))
    primary = glob.glob(os.path.join(repodata, '*primary.xml*'))
    assert primary
    if shutil.which('dnf'):
        out = run('dnf', '-q', '--setopt=reposdir=/nonexistent',
                  f'--repofrompath=df,file://{dist}/rpm', '--repo=df',
                  '--installroot', tempfile.mkdtemp(), 'repoquery',
                  '--releasever=9')
        assert 'dragonflow-controller' in out
