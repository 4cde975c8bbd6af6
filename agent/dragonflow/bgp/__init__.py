"""df-bgp: advertises tenant prefixes and floating IPs to BGP peers."""
