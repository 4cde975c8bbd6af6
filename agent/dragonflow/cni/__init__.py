"""``dragonflow-cni``: a CNI plugin (spec 1.0.0, 0.4.0 configs accepted)
giving containers ports on Dragonflow networks, directly on the NB API
(what Kuryr gave Dragonflow through Neutron).

``spec`` is the protocol (environment, network config, results and
errors as the spec defines them), ``wiring`` the host side (veth pair,
container namespace, br-int), ``plugin`` the commands. The plugin talks
to ZooKeeper itself with the NB API client: it must create the NB port
(the agent writes only bindings), and a chassis that can run an agent
can reach ZooKeeper; asking the agent over a socket would add a second
path to keep alive for nothing. No eventlet is imported.
"""
