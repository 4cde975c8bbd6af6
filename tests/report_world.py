"""A synthetic topology for the HTML report's tests: 10 chassis (ch0 down),
networks, 200 ports, a router, one tunnel whose BFD is down."""


def topo(chassis=10, networks=4, ports=200):
    nets = [{'id': f'n{i}', 'name': f'net{i}', 'type': 'geneve',
             'segment': i + 1, 'external': False} for i in range(networks)]
    per = ports // chassis
    return {
        'chassis': [{'id': f'ch{i}', 'ip': f'192.0.2.{i}', 'state':
                     'up' if i else 'down', 'since': 0, 'ports': {
                         n['name']: per // networks for n in nets}}
                    for i in range(chassis)],
        'networks': nets, 'unbound': 0, 'services': [],
        'routers': [{'id': 'r', 'name': 'r1',
                     'networks': [n['id'] for n in nets]}],
        'tunnels': [{'from': 'ch1', 'to': 'ch2', 'state': 'down',
                     'diagnostic': 'Control Detection Time Expired'},
                    {'from': 'ch1', 'to': 'ch3', 'state': 'up',
                     'diagnostic': None}]}
