"""``dfctl loadbalancer status LB``: the load balancer's tree (listeners,
their pool, its health monitor and members) with operating statuses, in
the shape of Octavia's ``loadbalancer status show``.

Members carry the status the health checks of their chassis wrote
(ONLINE, ERROR, NO_MONITOR); a disabled member shows OFFLINE. A pool is
ERROR when none of its enabled members is usable, DEGRADED when some are
in ERROR; the load balancer and its listeners take the worst of what is
under them (OFFLINE when disabled).
"""


def _member_status(member):
    return member.operating_status if member.admin_state_up else 'OFFLINE'


def _pool_status(pool, members):
    if not pool.admin_state_up:
        return 'OFFLINE'
    enabled = [m for m in members if m.admin_state_up]
    errors = [m for m in enabled if m.operating_status == 'ERROR']
    if enabled and len(errors) == len(enabled):
        return 'ERROR'
    if errors:
        return 'DEGRADED'
    return 'ONLINE'


def _worst(statuses):
    """ERROR when everything under is, DEGRADED when something is in
    ERROR or DEGRADED, else ONLINE."""
    if statuses and all(s == 'ERROR' for s in statuses):
        return 'ERROR'
    if any(s in ('ERROR', 'DEGRADED') for s in statuses):
        return 'DEGRADED'
    return 'ONLINE'


def tree(nb, lb_id):
    """The status tree of one load balancer, as a dict."""
    lb = nb.get('loadbalancer', lb_id)
    pools = {p.id: p for p in nb.list('pool', loadbalancer_id=lb.id)}
    members = {}
    for member in nb.list('member'):
        if member.pool_id in pools:
            members.setdefault(member.pool_id, []).append(member)
    monitors = {hm.pool_id: hm for hm in nb.list('healthmonitor')
                if hm.pool_id in pools}

    def pool_tree(pool):
        mine = sorted(members.get(pool.id, []),
                      key=lambda m: (m.address, m.protocol_port))
        out = {'id': pool.id, 'name': pool.name or '',
               'lb_algorithm': pool.lb_algorithm,
               'operating_status': _pool_status(pool, mine),
               'members': [{'id': m.id, 'name': m.name or '',
                            'address': m.address,
                            'protocol_port': m.protocol_port,
                            'weight': m.weight, 'backup': m.backup,
                            'operating_status': _member_status(m)}
                           for m in mine]}
        hm = monitors.get(pool.id)
        if hm is not None:
            out['healthmonitor'] = {
                'id': hm.id, 'type': hm.type,
                'operating_status': 'ONLINE' if hm.admin_state_up
                else 'OFFLINE'}
        return out

    listeners = []
    for listener in sorted(nb.list('listener', loadbalancer_id=lb.id),
                           key=lambda li: (li.protocol_port, li.protocol)):
        pool = pools.get(listener.default_pool_id)
        pool_out = [pool_tree(pool)] if pool is not None else []
        status = 'OFFLINE' if not listener.admin_state_up else _worst(
            [p['operating_status'] for p in pool_out])
        listeners.append({'id': listener.id, 'name': listener.name or '',
                          'protocol': listener.protocol,
                          'protocol_port': listener.protocol_port,
                          'operating_status': status, 'pools': pool_out})
    attached = {p['id'] for li in listeners for p in li['pools']}
    detached = [pool_tree(p) for p in sorted(pools.values(),
                                             key=lambda p: p.id)
                if p.id not in attached]
    status = 'OFFLINE' if not lb.admin_state_up else _worst(
        [li['operating_status'] for li in listeners])
    return {'loadbalancer': {
        'id': lb.id, 'name': lb.name or '', 'vip_address': lb.vip_address,
        'provisioning_status': lb.provisioning_status,
        'operating_status': status, 'listeners': listeners,
        'pools_without_listener': detached}}


def lines(status):
    """The tree as indented text."""
    lb = status['loadbalancer']
    out = [f'loadbalancer {lb["name"] or lb["id"]} {lb["vip_address"]} '
           f'{lb["operating_status"]}']

    def pool_lines(pool, indent):
        out.append(f'{indent}pool {pool["name"] or pool["id"]} '
                   f'{pool["lb_algorithm"]} {pool["operating_status"]}')
        hm = pool.get('healthmonitor')
        if hm is not None:
            out.append(f'{indent}  healthmonitor {hm["type"]} '
                       f'{hm["operating_status"]}')
        for m in pool['members']:
            extra = ' backup' if m['backup'] else ''
            out.append(f'{indent}  member {m["address"]}:'
                       f'{m["protocol_port"]} weight {m["weight"]}{extra} '
                       f'{m["operating_status"]}')
    for listener in lb['listeners']:
        out.append(f'  listener {listener["protocol"]}:'
                   f'{listener["protocol_port"]} '
                   f'{listener["operating_status"]}')
        for pool in listener['pools']:
            pool_lines(pool, '    ')
    for pool in lb['pools_without_listener']:
        pool_lines(pool, '  ')
    return out
