"""Dragonflow, lean: a distributed SDN control plane for Open vSwitch."""

__version__ = "0.1.0"
