"""Reading ``ovs-appctl ofproto/trace`` answers (recorded from the lab's
OVS 3.1) and writing the flow it is asked about."""
import pathlib

from dragonflow.trace import ofproto

TRACES = pathlib.Path(__file__).parent / 'traces'


def test_a_routed_packet_into_a_tunnel_through_conntrack():
    parsed = ofproto.parse((TRACES / 'routed_tunnel.txt').read_text())
    mine = [h for h in parsed.hits if h.bridge == 'br-int']
    assert [h.table for h in mine] == [0, 5, 10, 15, 20, 25, 30, 45, 55, 60,
                                       75]
    assert mine[0].cookie == 0x100000001 and mine[0].priority == 100
    assert mine[0].match == 'in_port=4,vlan_tci=0x0000/0x1fff'
    # the "drop" printed under ct() is conntrack's copy, not a drop
    assert mine[2].actions == ['ct(table=15,zone=19608)']
    assert mine[4].match == '' and mine[4].priority == 0
    assert [h.bridge for h in parsed.hits][-1] == 'br-phy'
    assert ofproto.outcome(parsed) == ('output', ['1'])
    assert ofproto.tunnel_fields(parsed) == {
        'tun_id': '0xfa5e47', 'tun_dst': '172.30.77.3',
        'tun_metadata0': '0x64c182c8'}
    assert parsed.final_flow['nw_ttl'] == '63'
    assert parsed.datapath_actions.startswith('ct(commit,zone=19608)')


def test_a_table_miss_drop():
    parsed = ofproto.parse((TRACES / 'no_match_drop.txt').read_text())
    kind, hit = ofproto.outcome(parsed)
    assert kind == 'dropped' and hit.table == 0 and hit.actions == ['drop']
    assert parsed.final_flow == {} and parsed.datapath_actions == 'drop'


def test_flow_spec():
    headers = {'version': 4, 'proto': 'tcp', 'dl_src': 'fa:16:3e:00:00:01',
               'dl_dst': 'fa:16:3e:00:00:02', 'nw_src': '10.0.0.5',
               'nw_dst': '10.0.1.7', 'nw_ttl': 63, 'tp_src': 40000,
               'tp_dst': 22}
    assert ofproto.flow_spec(headers, 2, tunnel={
        'tun_id': '0x5', 'tun_src': '192.0.2.1', 'tun_dst': '192.0.2.2',
        'tun_metadata0': None}) == (
        'tcp,in_port=2,tun_id=0x5,tun_src=192.0.2.1,tun_dst=192.0.2.2,'
        'dl_src=fa:16:3e:00:00:01,dl_dst=fa:16:3e:00:00:02,'
        'nw_src=10.0.0.5,nw_dst=10.0.1.7,nw_ttl=63,tp_src=40000,tp_dst=22')
    v6 = dict(headers, version=6, proto='icmp6', nw_src='fd00::5',
              nw_dst='fd00::7', icmp_type=128, icmp_code=0)
    assert ofproto.flow_spec(v6, 3, vlan=10) == (
        'icmp6,in_port=3,dl_vlan=10,dl_src=fa:16:3e:00:00:01,'
        'dl_dst=fa:16:3e:00:00:02,ipv6_src=fd00::5,ipv6_dst=fd00::7,'
        'nw_ttl=63,icmpv6_type=128,icmpv6_code=0')
