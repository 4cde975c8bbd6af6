"""Datapath keys: a small unique integer per object that the OpenFlow
pipeline uses in registers and tunnel ids (network key in ``metadata``,
port keys in ``reg6``/``reg7``, router key in ``reg5``)."""
import random

from dragonflow.model import base
from dragonflow.model import fields as f


class KeyedModel(base.Model):
    """A model with an NB-wide unique ``unique_key`` allocated on create."""

    key_bits = 24
    key_max = None      # default: 2 ** key_bits - 1

    unique_key = f.Integer(min=1, max=2 ** 31 - 1, immutable=True,
                           help='datapath key, allocated on create')

    def prepare(self, view):
        super().prepare(view)
        if self.unique_key is None:
            self.unique_key = random.randint(
                1, self.key_max or 2 ** self.key_bits - 1)
            self.mark_allocated('unique_key')

    def unique_keys(self):
        keys = list(super().unique_keys())
        keys.append(('unique_key', f'{self.table}/{self.unique_key}'))
        return keys
