"""Dragonflow, lean: a distributed SDN control plane for Open vSwitch."""

__version__ = "0.2.0"
