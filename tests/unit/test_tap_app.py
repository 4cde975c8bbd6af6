"""The tap app's pure parts: VLAN filters, the keys a change touches,
what a chassis programs."""
import pytest

import world
from dragonflow.controller.apps import tap
from dragonflow.model import tap as tapm


def test_vlan_filters_parse_and_name_what_is_wrong():
    assert tapm.vlans('9,18-27,36') == [(9, 9), (18, 27), (36, 36)]
    with pytest.raises(ValueError, match='27-18: the range is reversed'):
        tapm.vlans('27-18')
    with pytest.raises(ValueError, match='4095: VLAN ids are 1-4094'):
        tapm.vlans('4095')


def test_keys_follow_local_sources_and_services():
    state = world.state()
    app = tap.TapApp()
    keys = app.keys(state)
    # vm1 and the trunk parent are sources here; ts's port is here; ts2
    # (on ch2) has a local source.
    assert keys == {app.key('source', 'vm1'), app.key('source', 'parent'),
                    app.key('service', 'ts'), app.key('service', 'ts2')}
    flow = state.get('tap_flow', 'tf-vm1')
    assert app.touched_keys(state, 'tap_flow', None, flow) == {
        app.key('source', 'vm1'), app.key('service', 'ts')}
    # A subport's change touches its parent's copies.
    child = state.get('logical_port', 'child')
    assert app.key('source', 'parent') in app.touched_keys(
        state, 'logical_port', child, child)


def test_a_vlan_filter_keeps_only_those_subports():
    state = world.state()
    flow = state.get('tap_flow', 'tf-trunk')
    assert [(p.id, v) for p, v in tap.tapped(state, flow)] == [('child', 10)]
    unfiltered = world.obj('tap_flow', id='x', tap_service_id='ts',
                           source_port='parent')
    assert [(p.id, v) for p, v in tap.tapped(state, unfiltered)] == [
        ('parent', 0), ('child', 10)]
