"""testinfra suite: run with --hosts=ansible://... --ansible-inventory=..."""
