"""Trunks and subports in the NB: bad input refused with the field named,
nothing written."""
import pytest

from dragonflow import errors
from test_nb_api import assert_refused


@pytest.fixture
def trunk(nb):
    parent_net = nb.create('logical_switch', {'name': 'parent-net'})
    nb.create('subnet', {'network_id': parent_net.id, 'cidr': '10.0.0.0/24'})
    child_net = nb.create('logical_switch', {'name': 'child-net'})
    nb.create('subnet', {'network_id': child_net.id, 'cidr': '10.1.0.0/24'})
    parent = nb.create('logical_port', {'network_id': parent_net.id})
    child = nb.create('logical_port', {'network_id': child_net.id})
    other = nb.create('logical_port', {'network_id': child_net.id})
    trunk = nb.create('trunk', {'port_id': parent.id})
    segment = nb.create('child_port_segmentation', {
        'trunk_id': trunk.id, 'port_id': child.id, 'segmentation_id': 100})
    assert segment.parent_id == parent.id
    return dict(trunk=trunk, parent=parent, child=child, other=other)


CASES = [
    ('VLAN 0', 'child_port_segmentation',
     lambda o: {'trunk_id': o['trunk'].id, 'port_id': o['other'].id,
                'segmentation_id': 0}, 'segmentation_id: must be >= 1'),
    ('VLAN 4095', 'child_port_segmentation',
     lambda o: {'trunk_id': o['trunk'].id, 'port_id': o['other'].id,
                'segmentation_id': 4095}, 'segmentation_id: must be <= 4094'),
    ('a subport that does not exist', 'child_port_segmentation',
     lambda o: {'trunk_id': o['trunk'].id, 'port_id': 'ghost',
                'segmentation_id': 7}, 'logical_port ghost does not exist'),
    ('a trunk that does not exist', 'child_port_segmentation',
     lambda o: {'trunk_id': 'nosuchtrunk', 'port_id': o['other'].id,
                'segmentation_id': 7}, 'trunk nosuchtrunk does not exist'),
    ('the parent as its own subport', 'child_port_segmentation',
     lambda o: {'trunk_id': o['trunk'].id, 'port_id': o['parent'].id,
                'segmentation_id': 7}, 'is the parent port of the trunk'),
    ('a VLAN already used on the trunk', 'child_port_segmentation',
     lambda o: {'trunk_id': o['trunk'].id, 'port_id': o['other'].id,
                'segmentation_id': 100}, 'trunk VLAN 100 is already used'),
    ('a port that is already a subport', 'child_port_segmentation',
     lambda o: {'trunk_id': o['trunk'].id, 'port_id': o['child'].id,
                'segmentation_id': 8}, 'is already used by'),
    ('a second trunk on the same parent', 'trunk',
     lambda o: {'port_id': o['parent'].id}, 'is already used by trunk'),
    ('a trunk whose parent is a subport', 'trunk',
     lambda o: {'port_id': o['child'].id}, 'trunks do not nest'),
]


@pytest.mark.parametrize('what, table, data, message', CASES,
                         ids=[c[0] for c in CASES])
def test_bad_trunk_input_is_refused_and_nothing_written(nb, trunk, what,
                                                        table, data, message):
    assert_refused(nb, table, data(trunk), message)


def test_deleting_a_subport_port_needs_its_segmentation_gone(nb, trunk):
    with pytest.raises(errors.StillReferenced):
        nb.delete('logical_port', trunk['child'].id)
    nb.delete('logical_port', trunk['child'].id, cascade=True)
    assert nb.list('child_port_segmentation') == []
