"""``dfctl apply -f``: a file of objects applied in bulk, idempotently, as
an operator runs it (a subprocess against a real ZooKeeper)."""
import json

import pytest

from dragonflow.nb.api import NbApi
from dragonflow.store import zk

YAML = '''
# a network, its subnet, a group and 50 ports named by name
- kind: network
  name: apply-net
- kind: subnet
  name: apply-v4
  network_id: apply-net
  cidr: 10.44.0.0/24
- kind: security-group
  name: apply-web
'''


@pytest.fixture
def nb(zk_server, nb_root):
    client = zk.make_client(zk_server.address)
    client.start(timeout=10)
    yield NbApi(client, nb_root)
    client.stop()
    client.close()


def ports_yaml(count, extra=''):
    return ''.join(f'- kind: port\n  name: vm{i}\n  network_id: apply-net\n'
                   f'  security_groups: [apply-web]\n{extra}'
                   for i in range(count))


def test_apply_creates_then_changes_nothing_then_updates(dfctl, nb,
                                                         tmp_path):
    path = tmp_path / 'objects.yaml'
    path.write_text(YAML + ports_yaml(50))
    first = json.loads(dfctl('--json', 'apply', '-f', str(path)).stdout)
    assert first == {'created': 53, 'updated': 0, 'unchanged': 0,
                     'dry_run': False}
    ports = nb.list('logical_port')
    net = nb.list('logical_switch', name='apply-net')[0]
    group = nb.list('security_group', name='apply-web')[0]
    assert len(ports) == 50 and len({p.ips[0] for p in ports}) == 50
    assert all(p.network_id == net.id and p.security_groups == [group.id]
               for p in ports)

    again = dfctl('apply', '-f', str(path)).stdout
    assert again.strip() == 'created 0, updated 0, unchanged 53'

    path.write_text(YAML + ports_yaml(50, '  device_owner: compute:nova\n'))
    dry = json.loads(dfctl('--json', 'apply', '--dry-run', '-f',
                           str(path)).stdout)
    assert dry['updated'] == 50 and dry['dry_run']
    assert not any(p.device_owner for p in nb.list('logical_port'))
    dfctl('apply', '-f', str(path))
    assert all(p.device_owner == 'compute:nova' and p.version == 1
               for p in nb.list('logical_port'))


@pytest.mark.parametrize('content,message', [
    ('- kind: nonsense\n  name: x\n', "object 1 (nonsense): unknown kind"),
    ('- kind: network\n  color: red\n  name: x\n',
     "object 1 (network): unknown field 'color'"),
    ('- kind: network\n', 'object 1 (network): give an id or a name'),
    ('- kind: network\n  name: n\n- kind: port\n  name: p\n'
     '  network_id: elsewhere\n',
     "object 2 (port): network_id: no logical_switch 'elsewhere'"),
    ('- kind: network\n  name: n\n- kind: subnet\n  name: s\n'
     '  network_id: n\n  cidr: 10.0.0.0/33\n', 'object 2 (subnet)'),
    ('- [not, an, object]\n', 'expected a list of objects'),
    ('kind: [unclosed\n', 'not valid YAML'),
])
def test_a_bad_file_is_refused_naming_the_object_and_writes_nothing(
        dfctl, nb, tmp_path, content, message):
    path = tmp_path / 'bad.yaml'
    path.write_text(content)
    before = nb.client.get_children(nb.store.layout.log)
    proc = dfctl('apply', '-f', str(path), expect=1)
    assert message in proc.stderr and proc.stderr.count('\n') == 1
    assert nb.client.get_children(nb.store.layout.log) == before


def test_json_files_and_a_missing_file(dfctl, tmp_path):
    path = tmp_path / 'objects.json'
    path.write_text(json.dumps({'objects': [{'kind': 'network',
                                             'name': 'j'}]}))
    assert dfctl('apply', '-f', str(path)).stdout.startswith('created 1')
    proc = dfctl('apply', '-f', str(tmp_path / 'nope.json'), expect=1)
    assert 'No such file' in proc.stderr
