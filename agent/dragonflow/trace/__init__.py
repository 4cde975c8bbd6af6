"""Troubleshooting: follow a packet through the NB model (``logical``) and
through the real flows of the chassis on its path (``physical``)."""
