"""What a BGP speaker advertises, computed from NB objects (pure).

- tenant subnets behind routers whose external gateway is on one of the
  speaker's networks, with the router's gateway address as next hop;
- floating IP /32s on the speaker's networks whose port is bound to a
  chassis, with that chassis' external address as next hop.
"""
import ipaddress


def desired_routes(objects, speaker):
    """{prefix: next_hop}. ``objects``: table -> id -> model object."""
    networks = set(speaker.networks)
    version = speaker.ip_version
    out = {}
    if speaker.advertise_tenant_networks:
        for router in objects.get('logical_router', {}).values():
            gateway = router.external_gateway
            if not gateway or gateway.get('network_id') not in networks or \
                    not gateway.get('ip'):
                continue
            for rport in objects.get('logical_router_port', {}).values():
                if rport.router_id != router.id:
                    continue
                subnet = objects.get('subnet', {}).get(rport.subnet_id)
                if subnet is not None and subnet.network.version == version:
                    out[subnet.cidr] = gateway['ip']
    if speaker.advertise_floating_ip_host_routes and version == 4:
        for fip in objects.get('floating_ip', {}).values():
            if fip.floating_network_id not in networks or not fip.port_id:
                continue
            port = objects.get('logical_port', {}).get(fip.port_id)
            if port is None or not port.binding_chassis:
                continue
            chassis = objects.get('chassis', {}).get(port.binding_chassis)
            if chassis is None or not chassis.external_host_ip:
                continue
            prefix = str(ipaddress.ip_network(fip.floating_ip_address))
            out[prefix] = chassis.external_host_ip
    return out
