"""Datapath keys: an NB-wide unique integer per object, drawn at random
below ``2 ** key_bits`` on create, that the OpenFlow pipeline uses in
registers and conntrack: network key in ``metadata`` and as conntrack zone
(16 bits), port keys in ``reg6``/``reg7``, ``ct_mark`` and the Geneve
port-key option (31 bits), router key in ``reg5``. Tunnels carry the
network's segmentation id, not its key."""
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
