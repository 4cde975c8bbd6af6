"""TLS to ZooKeeper, proven: a real ZooKeeper with a secureClientPort
(Netty, client certificates required) and a throwaway CA; dfctl and
df-bgp connect with TLS and digest auth on top; a client with the wrong
CA, no client certificate, no TLS or an unreadable file fails with a clear
one-line error. (The agent over TLS: tests/lab/test_agent_tls.py.)"""
import json
import os
import signal
import subprocess
import sys
import uuid

import pytest

from lab_harness import tls
from lab_harness.zookeeper import ZkServer, free_port
from waiting import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
AGENT = os.path.join(ROOT, 'agent')
AUTH = 'dragonflow:tls-and-digest'


@pytest.fixture(scope='module')
def secure_zk(workdir):
    certs = tls.make_ca(os.path.join(workdir, 'tls-ca'))
    port = free_port()
    server = ZkServer(os.path.join(workdir, 'zk-tls'), extra_config=(
        tls.zookeeper_config(certs, port))).start()
    try:
        server.wait_ready()
        server.secure_address = f'127.0.0.1:{port}'
        server.certs = certs
        yield server
    finally:
        server.kill()


@pytest.fixture
def tls_env(secure_zk):
    """Environment of a client with TLS (CA, client certificate) and
    digest auth, on its own NB root."""
    certs = secure_zk.certs
    return dict(os.environ, PYTHONPATH=AGENT,
                OS_DF__REMOTE_DB_HOSTS=secure_zk.secure_address,
                OS_DF__NB_ROOT=f'/dftls-{uuid.uuid4().hex[:8]}',
                OS_DF__ZK_USE_SSL='true', OS_DF__ZK_CA=certs['ca'],
                OS_DF__ZK_CERTFILE=certs['client_crt'],
                OS_DF__ZK_KEYFILE=certs['client_key'],
                OS_DF__ZK_AUTH=AUTH, OS_DF__ZK_CONNECT_TIMEOUT='3')


def dfctl(env, *args, expect=0):
    proc = subprocess.run([sys.executable, '-m', 'dragonflow.cli.dfctl',
                           *args], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == expect, (proc.stdout, proc.stderr)
    return proc


def test_dfctl_over_tls_with_digest_auth(tls_env):
    net = json.loads(dfctl(tls_env, '--json', 'network', 'create', '--name',
                           'secure').stdout)
    assert json.loads(dfctl(tls_env, '--json', 'network', 'show',
                            'secure').stdout)['id'] == net['id']
    # TLS alone is not enough to write: the NB is the digest user's.
    anonymous = {k: v for k, v in tls_env.items() if k != 'OS_DF__ZK_AUTH'}
    refused = dfctl(anonymous, 'network', 'create', '--name', 'intruder',
                    expect=1)
    assert 'not authori' in refused.stderr.lower()
    assert [n['name'] for n in json.loads(dfctl(
        anonymous, '--json', 'network', 'list').stdout)] == ['secure']


@pytest.mark.parametrize('change, message', [
    ({'OS_DF__ZK_CA': 'other_ca'}, 'certificate verify failed'),
    ({'OS_DF__ZK_CERTFILE': None, 'OS_DF__ZK_KEYFILE': None},
     'alert bad certificate'),
    ({'OS_DF__ZK_USE_SSL': 'false'},
     'a TLS port? then set [df] zk_use_ssl'),
    ({'OS_DF__ZK_CA': '/nonexistent/ca.pem'},
     'TLS to ZooKeeper: [df] zk_ca /nonexistent/ca.pem cannot be read'),
    ({'OS_DF__ZK_KEYFILE': None},
     'TLS to ZooKeeper: give both [df] zk_certfile and zk_keyfile'),
])
def test_a_client_that_cannot_do_tls_fails_clearly(tls_env, secure_zk,
                                                   change, message):
    env = dict(tls_env)
    for key, value in change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = secure_zk.certs.get(value, value)
    proc = dfctl(env, 'network', 'list', expect=3)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith('dfctl: error: '), lines
    assert message in lines[0], lines[0]
    if change.get('OS_DF__ZK_CA') == 'other_ca':
        assert 'check [df] zk_ca, zk_certfile, zk_keyfile' in lines[0]


def test_df_bgp_connects_with_tls_and_reports_its_health(tls_env, tmp_path):
    log = open(tmp_path / 'df-bgp.log', 'wb')
    env = dict(tls_env, OS_DF__HOST='bgp-tls', OS_DF__REPORT_INTERVAL='1')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'dragonflow.bgp.service'], env=env,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def up():
            rows = json.loads(dfctl(tls_env, '--json', 'service',
                                    'list').stdout)
            return any(r['binary'] == 'df-bgp' and r['state'] == 'up'
                       for r in rows)
        wait_until(up, 30, message='df-bgp registered over TLS')
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
    assert proc.poll() is not None
