"""The local controller: keeps one chassis' OVS in sync with the NB model."""
