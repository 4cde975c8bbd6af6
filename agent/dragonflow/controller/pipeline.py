"""The OpenFlow pipeline: table numbers and register conventions.

Registers: ``reg6`` source port key, ``reg7`` destination port key,
``reg5`` router key, ``metadata`` network key (Dragonflow's conventions).
"""
CLASSIFIER = 0          # ingress from local ports and tunnels
PORT_SECURITY = 5       # egress anti-spoofing
ARP_RESPONDER = 25
DHCP = 30
L2_LOOKUP = 55
L3_LOOKUP = 60          # distributed routing
EGRESS = 75             # to the destination port: local or over a tunnel
INGRESS_TUNNEL = 100    # from a tunnel: destination lookup and delivery

REG_SRC = 'reg6'
REG_DST = 'reg7'
REG_ROUTER = 'reg5'

MULTICAST = ('01:00:00:00:00:00', '01:00:00:00:00:00')
ETH_ARP = 0x0806
ETH_IP = 0x0800

TUNNEL_PORTS = {'geneve': 'tun-geneve', 'vxlan': 'tun-vxlan'}
