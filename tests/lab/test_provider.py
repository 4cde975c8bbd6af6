"""Provider networks through bridge mappings, with real packets: VMs on a
flat and on a VLAN network reach a host outside the chassis on the
provider segment, reach each other across chassis over the physical
network (not a tunnel), and the VLAN keeps its traffic apart from
untagged traffic."""
import pytest

from lab_harness.netlab import PHYSNET
from test_l2 import pings
from waiting import wait_until


@pytest.fixture(scope='module')
def external(lab):
    host = lab.add_external('ext')
    yield host
    host.destroy()
    lab.vms.pop('ext', None)


def _provider(topo, cidr, network_type, **kw):
    return topo.network(cidr, network_type=network_type,
                        physical_network=PHYSNET, **kw)


def test_flat_network_reaches_the_outside_and_across_chassis(topo, lab,
                                                              external):
    net = _provider(topo, '10.61.0.0/24', 'flat')
    external.add_address('10.61.0.250/24')
    a = topo.vm(net, 'ch1')
    b = topo.vm(net, 'ch2')
    assert pings(a, '10.61.0.250')
    assert pings(b, '10.61.0.250')
    assert pings(external, a.ip)
    assert pings(a, b.ip)
    # The outside sees the VMs' own MACs: they are on the segment.
    neigh = external.run('ip', 'neigh', 'show', a.ip)
    assert a.mac in neigh


def test_vlan_network_is_tagged_and_isolated(topo, lab, external):
    net = _provider(topo, '10.62.0.0/24', 'vlan', segmentation_id=101)
    external.add_address('10.62.0.250/24', vlan=101)
    c = topo.vm(net, 'ch1')
    d = topo.vm(net, 'ch2')
    assert pings(c, '10.62.0.250')
    assert pings(d, c.ip)
    # The same subnet untagged on the segment is another network.
    external.add_address('10.62.0.251/24')
    assert not pings(c, '10.62.0.251', timeout=3)


def test_provider_traffic_never_uses_a_tunnel(topo, lab, external):
    net = _provider(topo, '10.63.0.0/24', 'vlan', segmentation_id=102)
    e = topo.vm(net, 'ch1')
    f = topo.vm(net, 'ch2')
    assert pings(e, f.ip)
    topo.wait_bound(f)
    key = topo.nb.get('logical_port', f.port_id).unique_key

    def egress():
        return [line for line in lab.chassis['ch1'].flows()
                if 'table=75' in line and f'reg7=0x{key:x}' in line]
    wait_until(egress, 10, message='remote port known on ch1')
    assert all('goto_table:80' in line for line in egress())
    flows = lab.chassis['ch1'].flows()
    assert any('push_vlan' in line and 'set_field:4198->vlan_vid' in line
               for line in flows if 'table=80' in line)
