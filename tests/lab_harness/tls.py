"""A throwaway certificate authority for TLS tests (openssl CLI): a CA,
a server certificate for the given addresses and a client certificate,
as PEM files in one directory."""
import os
import subprocess


def _openssl(*args, cwd):
    subprocess.run(['openssl', *args], cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def make_ca(directory, addresses=('127.0.0.1',), name='df-test'):
    """{'ca', 'server_pem' (key + certificate, ZooKeeper's PEM keystore),
    'server_crt', 'server_key', 'client_crt', 'client_key', 'other_ca'}:
    paths; other_ca is a second CA that signed nothing here (what a client
    with the wrong CA holds)."""
    os.makedirs(directory, exist_ok=True)
    for ca in ('ca', 'other_ca'):
        _openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout',
                 f'{ca}.key', '-out', f'{ca}.pem', '-days', '3', '-subj',
                 f'/CN={name}-{ca}', cwd=directory)
    sans = ','.join(f'IP:{a}' for a in addresses) + ',DNS:localhost'
    for who in ('server', 'client'):
        _openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout',
                 f'{who}.key', '-out', f'{who}.csr', '-subj',
                 f'/CN={name}-{who}', cwd=directory)
        with open(os.path.join(directory, f'{who}.ext'), 'w') as f:
            f.write(f'subjectAltName={sans}\n')
        _openssl('x509', '-req', '-in', f'{who}.csr', '-CA', 'ca.pem',
                 '-CAkey', 'ca.key', '-CAcreateserial', '-out', f'{who}.crt',
                 '-days', '3', '-extfile', f'{who}.ext', cwd=directory)
    path = lambda f: os.path.join(directory, f)  # noqa: E731
    with open(path('server.pem'), 'w') as out:
        for part in ('server.key', 'server.crt'):
            with open(path(part)) as f:
                out.write(f.read())
    return {'ca': path('ca.pem'), 'other_ca': path('other_ca.pem'),
            'server_pem': path('server.pem'), 'server_crt': path('server.crt'),
            'server_key': path('server.key'), 'client_crt': path('client.crt'),
            'client_key': path('client.key')}


def zookeeper_config(certs, secure_port, client_auth='need'):
    """zoo.cfg lines for a secureClientPort next to the plain one (Netty;
    unknown zoo.cfg keys become zookeeper.* system properties)."""
    return {
        'secureClientPort': secure_port,
        'serverCnxnFactory':
            'org.apache.zookeeper.server.NettyServerCnxnFactory',
        'ssl.keyStore.location': certs['server_pem'],
        'ssl.keyStore.type': 'PEM',
        'ssl.trustStore.location': certs['ca'],
        'ssl.trustStore.type': 'PEM',
        'ssl.clientAuth': client_auth,
    }
