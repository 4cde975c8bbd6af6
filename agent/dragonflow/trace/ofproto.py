"""``ovs-appctl ofproto/trace``: the packet to ask about, and what the
answer says (pure text handling; the agent runs the command).

The answer lists, per bridge and per recirculation (conntrack), each flow
the packet hit as ``<table>. <match>, priority <p>, cookie <c>`` followed
by its actions indented, then ``Final flow:`` and ``Datapath actions:``.
:func:`parse` turns that into :class:`Hit` values in order and the final
datapath actions; :func:`outcome` says where the packet went from the
OpenFlow actions of br-int (output port, controller, or dropped).
"""
import collections
import re

# ' 0. in_port=4,vlan_tci=0x0000/0x1fff, priority 100, cookie 0x100000001'
FLOW_LINE = re.compile(
    r'^\s{0,3}(\d+)\. (?:(.*?), )?priority (\d+)(?:, cookie (0x[0-9a-f]+))?$')
NO_MATCH = re.compile(r'^\s{0,3}(\d+)\. No match\.?$')
BRIDGE = re.compile(r'^bridge\("([^"]+)"\)$')
PROTOS = {('icmp', 4): 'icmp', ('icmp6', 6): 'icmp6', ('tcp', 4): 'tcp',
          ('tcp', 6): 'tcp6', ('udp', 4): 'udp', ('udp', 6): 'udp6'}


class Hit(collections.namedtuple('Hit', 'bridge table match priority '
                                        'cookie actions')):
    """One flow the packet went through (cookie None: a table miss or a
    flow without one)."""

    __slots__ = ()

    def to_dict(self):
        return dict(self._asdict())


Parsed = collections.namedtuple('Parsed', 'hits final_flow datapath_actions')


def flow_spec(headers, in_port, vlan=None, tunnel=None):
    """The ``ofproto/trace`` flow of a packet (headers as the logical
    trace gives them) entering on OpenFlow port in_port; tunnel: the
    tun_id/tun_src/tun_dst/tun_metadata0 it arrived with."""
    version = headers['version']
    parts = [PROTOS[(headers['proto'], version)], f'in_port={in_port}']
    for field in ('tun_id', 'tun_src', 'tun_dst', 'tun_metadata0'):
        value = (tunnel or {}).get(field)
        if value is not None:
            parts.append(f'{field}={value}')
    if vlan is not None:
        parts.append(f'dl_vlan={vlan}')
    parts += [f'dl_src={headers["dl_src"]}', f'dl_dst={headers["dl_dst"]}']
    ip = 'nw' if version == 4 else 'ipv6'
    parts += [f'{ip}_src={headers["nw_src"]}',
              f'{ip}_dst={headers["nw_dst"]}',
              f'nw_ttl={headers.get("nw_ttl", 64)}']
    if 'icmp_type' in headers:
        icmp = 'icmp' if version == 4 else 'icmpv6'
        parts += [f'{icmp}_type={headers["icmp_type"]}',
                  f'{icmp}_code={headers.get("icmp_code", 0)}']
    else:
        parts += [f'tp_src={headers["tp_src"]}', f'tp_dst={headers["tp_dst"]}']
    return ','.join(parts)


def parse(text):
    """The hits in order, the last ``Final flow`` (as a field dict) and
    the last ``Datapath actions``."""
    hits, final, actions = [], {}, ''
    bridge, current = None, None
    for line in text.splitlines():
        found = BRIDGE.match(line)
        if found:
            bridge = found.group(1)
            continue
        found = FLOW_LINE.match(line)
        if found:
            table, match, priority, cookie = found.groups()
            current = Hit(bridge, int(table), match or '', int(priority),
                          int(cookie, 16) if cookie else None, [])
            hits.append(current)
            continue
        found = NO_MATCH.match(line)
        if found:
            current = Hit(bridge, int(found.group(1)), 'no match', None,
                          None, [])
            hits.append(current)
            continue
        if line.startswith('Final flow: '):
            rest = line[len('Final flow: '):]
            if rest != 'unchanged':
                final = fields(rest)
            current = None
        elif line.startswith('Datapath actions: '):
            actions = line[len('Datapath actions: '):]
            current = None
        elif current is not None and line.startswith('    '):
            action = line.strip()
            # ofproto/trace prints "drop" under a ct() action for the
            # packet handed to conntrack: not a drop of the pipeline.
            after_ct = action == 'drop' and current.actions and \
                current.actions[-1].startswith('ct(')
            if action and not action.startswith('->') and \
                    action != 'thaw' and not after_ct and \
                    not action.startswith('Resuming from table'):
                current.actions.append(action)
        elif not line.strip() or line.startswith('='):
            current = None
    return Parsed(hits, final, actions)


def fields(flow):
    """``a=1,b=2,icmp`` → {'a': '1', 'b': '2', 'icmp': ''}."""
    out = {}
    for part in flow.split(','):
        key, _, value = part.partition('=')
        out[key] = value
    return out


def outcome(parsed, bridge='br-int'):
    """('output', [ports]) | ('controller', None) | ('dropped', hit):
    what br-int's last flows did with the packet."""
    mine = [h for h in parsed.hits if h.bridge == bridge]
    outputs = []
    for hit in mine:
        for action in hit.actions:
            if action.startswith('output:'):
                outputs.append(action[len('output:'):])
            elif action in ('IN_PORT', 'in_port'):
                outputs.append('in_port')
            elif action.startswith('CONTROLLER') or \
                    action.startswith('controller'):
                return 'controller', hit
    if outputs:
        return 'output', outputs
    return 'dropped', mine[-1] if mine else None


def tunnel_fields(parsed, bridge='br-int'):
    """The tunnel metadata br-int's flows set (tun_id, tun_dst,
    tun_metadata0), from their set_field actions."""
    out = {}
    for hit in parsed.hits:
        if hit.bridge != bridge:
            continue
        for action in hit.actions:
            found = re.match(r'set_field:([^-]+)->(tun_id|tun_dst|'
                             r'tun_metadata0)$', action)
            if found:
                out[found.group(2)] = found.group(1)
    return out
