"""Tap as a service: copies of a port's traffic to a monitoring port
anywhere in the cloud (tables 6, 16, 103, 112 take copies, 120 delivers
them; table 0 receives them from other chassis).

**Where copies are taken.** On the source port's chassis, by the
pipeline: what the VM sends (``OUT``) after port security and either
before its security groups (table 6, ``position before-sg``) or after
them (table 16, the default: what really leaves the VM); what it receives
(``IN``) before its security groups (103) or after them (112: what the VM
really gets, after un-NAT of floating IP traffic, so the copy shows the
fixed address, as the VM sees it). A copy flow sets the service's key in
``reg10`` (and, for a trunk subport, its VLAN in ``reg11``) and
resubmits to table 120; the packet then goes on unchanged (TTL, VLAN tags
and NAT as they would be).

**Delivery.** Table 120 outputs the copy to the service port when it is
local, or sends it over Geneve to the service port's chassis with the
reserved VNI 16777215 and the service port's key in the port-key option;
there table 0 outputs what arrives with that VNI to that port and nothing
else: never into the normal pipeline, never to another network, no
security groups or port security on the copy. A trunk subport's frames
are copied with their VLAN tag pushed (and popped again right after the
output, so the original stays as it was); ``vlan_filter`` keeps only
those VLANs (and then not the parent's untagged frames).

Flows are keyed by source port (its copy flows) and by service (delivery
and reception), so adding or deleting a tap flow touches those two keys
on the chassis that program them.
"""
from dragonflow.controller import apps
from dragonflow.controller import geneve
from dragonflow.controller import pipeline as pl
from dragonflow.controller import state as state_mod
from dragonflow.model import tap as tapm

TAP_TABLES = state_mod.TAP_TABLES
STAGES = {('OUT', 'after-sg'): (pl.TAP_OUT, pl.REG_SRC),
          ('OUT', 'before-sg'): (pl.TAP_OUT_PRE, pl.REG_SRC),
          ('IN', 'after-sg'): (pl.TAP_IN, pl.REG_DST),
          ('IN', 'before-sg'): (pl.TAP_IN_PRE, pl.REG_DST)}
COPY, RECEIVE, DELIVER = 100, 120, 100


def directions(flow):
    return ('IN', 'OUT') if flow.direction == 'BOTH' else (flow.direction,)


def tapped(state, flow):
    """[(port, VLAN or 0)] whose traffic a tap flow copies: the source
    port (unless a VLAN filter is set) and, for a trunk parent, its
    subports (those of the filter's VLANs)."""
    port = state.get('logical_port', flow.source_port)
    if port is None:
        return []
    wanted = tapm.vlans(flow.vlan_filter) if flow.vlan_filter else None
    out = [] if wanted else [(port, 0)]
    for child_id, segment in sorted(state.children.get(port.id, {}).items()):
        child = state.get('logical_port', child_id)
        vlan = segment.segmentation_id
        if child is not None and (wanted is None or any(
                low <= vlan <= high for low, high in wanted)):
            out.append((child, vlan))
    return out


class TapApp(apps.App):
    name = 'tap'
    cookie = 19

    def global_flows(self, state):
        return [self.flow(table, 0, goto=pl.PASS_THROUGH[table])
                for table in (pl.TAP_OUT_PRE, pl.TAP_OUT, pl.TAP_IN_PRE,
                              pl.TAP_IN)] + [self.flow(pl.TAP_DELIVER, 0)]

    # --- what is programmed here -----------------------------------------
    def keys(self, state):
        return state.derived('tap_keys', lambda: frozenset(
            self._keys(state)))

    def _keys(self, state):
        out = set()
        for service in state.objects['tap_service'].values():
            port = state.get('logical_port', service.port_id)
            if port is not None and state.is_local(port):
                out.add(self.key('service', service.id))
        for flow in state.objects['tap_flow'].values():
            port = state.get('logical_port', flow.source_port)
            if port is not None and state.is_local(port):
                out.add(self.key('source', port.id))
                out.add(self.key('service', flow.tap_service_id))
        return out

    def touched_keys(self, state, table, obj, old):
        objs = [o for o in (obj, old) if o is not None]
        if table == 'tap_flow':
            return {k for o in objs for k in (
                self.key('source', o.source_port),
                self.key('service', o.tap_service_id))}
        if table == 'tap_service':
            ids = {o.id for o in objs}
            return {self.key('service', i) for i in ids} | {
                self.key('source', f.source_port)
                for f in state.objects['tap_flow'].values()
                if f.tap_service_id in ids}
        if table == 'logical_port':
            ids = {o.id for o in objs}
            ids |= {state.segments[i].parent_id for i in list(ids)
                    if i in state.segments}
            out = {self.key('source', i) for i in ids}
            out |= {self.key('service', s.id)
                    for s in state.objects['tap_service'].values()
                    if s.port_id in ids}
            out |= {self.key('service', f.tap_service_id)
                    for f in state.objects['tap_flow'].values()
                    if f.source_port in ids}
            return out
        if table == 'uplink':       # a tunnel port came, went or moved
            return {k for k in self.keys(state) if k[1] == 'service'}
        return set()

    def key_flows(self, state, key):
        _, kind, key_id = key
        if kind == 'source':
            return self._copies(state, key_id)
        return self._delivery(state, key_id)

    # --- flows -----------------------------------------------------------
    def _copies(self, state, port_id):
        """One flow per (stage, tapped port): a copy to each service."""
        copies = {}         # (table, reg, port key) -> {(service, VLAN)}
        for flow in state.objects['tap_flow'].values():
            if flow.source_port != port_id:
                continue
            service = state.get('tap_service', flow.tap_service_id)
            if service is None:
                continue
            for port, vlan in tapped(state, flow):
                if not state.is_local(port):
                    continue
                for direction in directions(flow):
                    table, reg = STAGES[(direction, flow.position)]
                    copies.setdefault((table, reg, port.unique_key),
                                      set()).add((service.unique_key, vlan))
        out = []
        for (table, reg, key), targets in sorted(copies.items()):
            actions = []
            for service_key, vlan in sorted(targets):
                actions += [('set_field', pl.REG_TAP, service_key),
                            ('set_field', pl.REG_TAP_VLAN, vlan),
                            ('resubmit', pl.TAP_DELIVER)]
            out.append(self.flow(table, COPY, {reg: key}, actions,
                                 goto=pl.PASS_THROUGH[table]))
        return out

    def _delivery(self, state, service_id):
        service = state.get('tap_service', service_id)
        port = state.get('logical_port', service.port_id) \
            if service else None
        if port is None:
            return []
        tunnel = state.tunnel_ofports.get('geneve')
        local = state.is_local(port)
        out = []
        if local and tunnel is not None:
            out.append(self.flow(
                pl.CLASSIFIER, RECEIVE,
                {'in_port': tunnel, 'tunnel_id': pl.TAP_VNI,
                 geneve.FIELD: port.unique_key},
                [('output', state.wire(port.id)[0])]))
        if local:
            output = [('output', state.wire(port.id)[0])]
        else:
            chassis = state.chassis(port.binding_chassis) \
                if port.binding_chassis else None
            if chassis is None or tunnel is None:
                return out      # nowhere to send copies: none are made
            output = [('set_field', 'tunnel_id', pl.TAP_VNI),
                      ('set_field', 'tun_ipv4_dst', chassis.ip),
                      ('set_field', geneve.FIELD, port.unique_key),
                      ('output', tunnel)]
        vlans = {0}
        for flow in state.objects['tap_flow'].values():
            if flow.tap_service_id == service_id:
                vlans |= {v for p, v in tapped(state, flow)}
        # A copy of what came in through the tunnel goes back out of it:
        # OpenFlow drops an output to the in_port unless it says in_port.
        variants = [({}, output)]
        if not local:
            variants.append(({'in_port': tunnel},
                             output[:-1] + [('in_port',)]))
        for vlan in sorted(vlans):
            for extra, sent in variants:
                match = dict(extra, **{pl.REG_TAP: service.unique_key,
                                       pl.REG_TAP_VLAN: vlan})
                acts = sent if not vlan else \
                    [('push_vlan', 0x8100),
                     ('set_field', 'vlan_vid', vlan | pl.VLAN_PRESENT)] + \
                    sent + [('pop_vlan',)]
                out.append(self.flow(pl.TAP_DELIVER,
                                     DELIVER + bool(extra), match, acts))
        return out


APP = TapApp
