"""The OpenFlow side, on os-ken: turns Flow data into FlowMods and hands
switch events (connect, packet-in) to the controller.

Cookies are ``generation << 32 | app cookie``. A (re)connected switch gets
one atomic bundle (controller/flowcodec.py) from the flows it has
(controller/flowdump.py) to the desired ones, or, when those cannot be
read, the deletion of every flow and all desired flows under a new
generation: a changed flow is replaced in place (OpenFlow add of the same
match and priority), so traffic never stops.
"""
import logging

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, \
    MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import nicira_ext
from os_ken.ofproto import ofproto_v1_3

from dragonflow import logs
from dragonflow import metrics
from dragonflow.controller import geneve

LOG = logging.getLogger(__name__)
BATCH = 200      # FlowMods joined per datapath.send()


def cookie(generation, app_cookie):
    """A flow's cookie: the full sync's generation in the high 32 bits
    (which sync installed it), the app's cookie in the low ones."""
    return ((generation & 0xffffffff) << 32) | app_cookie


def split_cookie(flow_cookie):
    """(generation, app cookie) of a flow's cookie: :func:`cookie`
    undone."""
    return flow_cookie >> 32, flow_cookie & 0xffffffff


# Fields with a Nicira (NXM) header besides their OXM one. vswitchd writes
# a register move's fields with the NXM header where there is one, so a
# move sent that way reads back byte for byte the same (flowdump: a full
# sync leaves such flows in place instead of sending them again).
_NXM = {t.name for t in nicira_ext.oxm_types if t.name.endswith('_nxm')}


def _nxm(field):
    name = f'{field}_nxm'
    return name if name in _NXM else field


def _actions(dp, flow):
    ofp, parser = dp.ofproto, dp.ofproto_parser
    actions, metadata = [], None
    for action in flow.actions:
        kind = action[0]
        if kind == 'output':
            actions.append(parser.OFPActionOutput(action[1]))
        elif kind == 'in_port':
            actions.append(parser.OFPActionOutput(ofp.OFPP_IN_PORT))
        elif kind == 'normal':
            actions.append(parser.OFPActionOutput(ofp.OFPP_NORMAL))
        elif kind == 'controller':
            actions.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER,
                                                  ofp.OFPCML_NO_BUFFER))
        elif kind == 'set_field':
            actions.append(parser.OFPActionSetField(**{action[1]: action[2]}))
        elif kind == 'move':
            actions.append(parser.NXActionRegMove(
                src_field=_nxm(action[1]), dst_field=_nxm(action[2]),
                n_bits=action[3]))
        elif kind == 'push_vlan':
            actions.append(parser.OFPActionPushVlan(action[1]))
        elif kind == 'pop_vlan':
            actions.append(parser.OFPActionPopVlan())
        elif kind == 'dec_ttl':
            actions.append(parser.OFPActionDecNwTtl())
        elif kind == 'resubmit':
            actions.append(parser.NXActionResubmitTable(
                in_port=OFPP10_IN_PORT, table_id=action[1]))
        elif kind == 'ct':
            actions.append(_ct(ofp, parser, *action[1:]))
        elif kind == 'conjunction':
            # Clauses are 1-based in ovs-ofctl's conjunction(id, k/n) and
            # in our flows, 0-based on the wire.
            actions.append(parser.NXActionConjunction(
                clause=action[2] - 1, n_clauses=action[3], id_=action[1]))
        elif kind == 'multipath':
            # ('multipath', hash fields, links, register): modulo-N of the
            # hash into the register's low 16 bits
            actions.append(parser.NXActionMultipath(
                fields=action[1], basis=0, algorithm=MP_MODULO_N,
                max_link=action[2] - 1, arg=0, ofs_nbits=15,
                dst=action[3]))
        elif kind == 'learn':
            actions.append(_learn(parser, *action[1:]))
        elif kind == 'write_metadata':
            metadata = action[1]
        else:
            raise ValueError(f'unknown action {action!r}')
    instructions = []
    if actions:
        instructions.append(parser.OFPInstructionActions(
            ofp.OFPIT_APPLY_ACTIONS, actions))
    if metadata is not None:
        instructions.append(parser.OFPInstructionWriteMetadata(
            metadata, 0xffffffffffffffff))
    if flow.goto is not None:
        instructions.append(parser.OFPInstructionGotoTable(flow.goto))
    return instructions


NX_NAT_F_SRC, NX_NAT_F_DST = 1, 2
MP_MODULO_N = 0
OFPP10_IN_PORT = 0xfff8     # Nicira actions take OpenFlow 1.0 port numbers


def _ct(ofp, parser, zone, table, commit, nat=None, mark=None):
    """ct(...) with an optional NAT (``'restore'``: apply the NAT of the
    connection; ``('src'|'dst', ip[, port])``: translate) and ct_mark to
    set."""
    inner = []
    if nat == 'restore':
        inner.append(parser.NXActionNAT(flags=0))
    elif nat is not None:
        direction, ip = nat[:2]
        port = nat[2] if len(nat) > 2 else None
        inner.append(parser.NXActionNAT(
            flags=NX_NAT_F_SRC if direction == 'src' else NX_NAT_F_DST,
            range_ipv4_min=ip, range_ipv4_max=ip, range_proto_min=port,
            range_proto_max=port))
    if mark is not None:
        inner.append(parser.OFPActionSetField(ct_mark=mark))
    return parser.NXActionCT(
        flags=1 if commit else 0, zone_src='', zone_ofs_nbits=zone,
        recirc_table=ofp.OFPTT_ALL if table is None else table, alg=0,
        actions=inner)


def _learn(parser, table, idle_timeout, fixed, copied, loads):
    """learn(...): a flow in table matching constants ((value, field,
    bits): prerequisites such as eth_type go first, as values), the
    current packet's values of the copied fields ((field, bits)), and
    loading constants ((value, field, bits))."""
    specs = [parser.NXFlowSpecMatch(src=value, dst=(field, 0), n_bits=bits)
             for value, field, bits in fixed]
    specs += [parser.NXFlowSpecMatch(src=(field, 0), dst=(field, 0),
                                     n_bits=bits) for field, bits in copied]
    specs += [parser.NXFlowSpecLoad(src=value, dst=(field, 0), n_bits=bits)
              for value, field, bits in loads]
    return parser.NXActionLearn(table_id=table, specs=specs,
                                idle_timeout=idle_timeout, priority=100)


# Fields os-ken serialises ahead of their prerequisites (it orders a
# match by field number, and these Nicira fields number below eth_type):
# OVS refuses such a match (bad prerequisite), so a match with one of them
# goes out in prerequisite order.
AFTER_PREREQUISITES = ('nw_ttl',)
PREREQUISITES = ('eth_type', 'ip_proto')


def _match(parser, flow):
    fields = flow.match_dict
    if not any(f in fields for f in AFTER_PREREQUISITES):
        return parser.OFPMatch(**fields)
    first = [f for f in PREREQUISITES if f in fields]
    return parser.OFPMatch(_ordered_fields=[(f, fields[f]) for f in first] + [
        (f, v) for f, v in fields.items() if f not in first])


def flow_mod(dp, flow, flow_cookie):
    parser = dp.ofproto_parser
    return parser.OFPFlowMod(
        dp, cookie=flow_cookie, table_id=flow.table,
        command=dp.ofproto.OFPFC_ADD, priority=flow.priority,
        match=_match(parser, flow), instructions=_actions(dp, flow))


def flow_delete(dp, flow):
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowMod(
        dp, table_id=flow.table, command=ofp.OFPFC_DELETE_STRICT,
        priority=flow.priority, match=_match(parser, flow),
        out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)


def delete_all(dp):
    """Delete every flow of every table. A full sync starts its bundle
    with it: whatever generation a flow carries (also one whose full sync
    never reached the switch, its agent killed or its connection lost
    before the commit), only the new set is left, atomically."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowMod(
        dp, cookie=0, cookie_mask=0, table_id=ofp.OFPTT_ALL,
        command=ofp.OFPFC_DELETE, out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY, match=parser.OFPMatch())


def async_config(dp):
    """Packet-ins for table misses, controller actions and expired TTLs
    (routers answer those with ICMP time exceeded); the OpenFlow 1.3
    defaults for the rest."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    packet_in = (1 << ofp.OFPR_NO_MATCH) | (1 << ofp.OFPR_ACTION) | \
        (1 << ofp.OFPR_INVALID_TTL)
    port_status = (1 << ofp.OFPPR_ADD) | (1 << ofp.OFPPR_DELETE) | \
        (1 << ofp.OFPPR_MODIFY)
    flow_removed = (1 << ofp.OFPRR_IDLE_TIMEOUT) | \
        (1 << ofp.OFPRR_HARD_TIMEOUT) | (1 << ofp.OFPRR_DELETE) | \
        (1 << ofp.OFPRR_GROUP_DELETE)
    return parser.OFPSetAsync(dp, [packet_in, 0], [port_status, port_status],
                              [flow_removed, 0])


def barrier(dp):
    return dp.ofproto_parser.OFPBarrierRequest(dp)


def send_all(dp, messages):
    """Send messages, joined in batches (datapath.send has a short queue)."""
    batch = []
    for msg in messages:
        batch.append(msg)
        if len(batch) >= BATCH:
            _send_batch(dp, batch)
            batch = []
    if batch:
        _send_batch(dp, batch)


def _send_batch(dp, batch):
    data = bytearray()
    for msg in batch:
        dp.set_xid(msg)
        msg.serialize()
        data += msg.buf
    dp.send(bytes(data))


def packet_out(dp, ofport, data, table=None, fields=None):
    """Out of ofport; or, with table, through the pipeline from that
    table with fields set first."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    if table is None:
        actions = [parser.OFPActionOutput(ofport)]
    else:
        actions = [parser.OFPActionSetField(**{k: v})
                   for k, v in sorted((fields or {}).items())]
        # Nicira resubmit takes a 16-bit port: OpenFlow 1.0's IN_PORT.
        actions.append(parser.NXActionResubmitTable(
            in_port=0xfff8, table_id=table))
    return parser.OFPPacketOut(
        datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
        actions=actions, data=data)


class DfOfApp(app_manager.OSKenApp):
    """os-ken app bridging switch events to the LocalController."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    controller = None    # set before the app manager instantiates us

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tlv_map_xids = {}      # datapath id -> xid of its TLV map

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        LOG.info('switch %016x connected', dp.id,
                 extra=logs.fields(datapath=f'{dp.id:016x}'))
        tlv_map = geneve.tlv_map(dp)
        send_all(dp, [async_config(dp), tlv_map])
        self.tlv_map_xids[dp.id] = tlv_map.xid
        self.controller.post('datapath', dp)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def switch_gone(self, ev):
        if ev.datapath is not None and ev.datapath.id is not None:
            LOG.warning('switch %016x disconnected', ev.datapath.id,
                        extra=logs.fields(datapath=f'{ev.datapath.id:016x}'))
            self.controller.post('datapath_lost', ev.datapath)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply(self, ev):
        self.controller.post('barrier', (ev.msg.datapath, ev.msg.xid))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        self.controller.packet_in(ev.msg)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error(self, ev):
        msg = ev.msg
        code = getattr(msg, 'code', None)
        if code is None:        # an experimenter error (e.g. Nicira's)
            code = getattr(msg, 'exp_type', None)
        if msg.xid == self.tlv_map_xids.get(msg.datapath.id):
            # Already mapped: vswitchd kept the map across our restart.
            LOG.info('switch kept its Geneve TLV map (error type %s code '
                     '%s)', msg.type, code)
            return
        LOG.error('switch error type %s code %s for xid %s', msg.type, code,
                  msg.xid)
        metrics.SWITCH_ERRORS.labels(str(msg.type)).inc()
