"""Packet-ins routed to the app that asked for them.

A flow that sends to the controller carries its app's cookie (the low 32
bits of the flow cookie; the high ones are the generation), and OpenFlow
1.3 copies the cookie and the table into the packet-in. So a packet-in
goes to exactly one handler: the one its app declared for that table in
``App.packet_ins``. Packet-ins the switch raises by itself, whatever flow
was running (an expired TTL), go to the one app that declared the reason
in ``App.switch_packet_ins``. Anything else (a foreign or stale cookie, a
table the app declared nothing for, a table miss) reaches no app: it is
counted in :attr:`PacketInRouter.unclaimed` and dropped.

The declarations are checked when the apps load: an app may only ask for
packet-ins from a stage it writes, and one reason has one handler.
"""
import collections
import logging

from dragonflow import metrics
from dragonflow.controller import pipeline as pl

LOG = logging.getLogger(__name__)
OFPR_NO_MATCH, OFPR_ACTION, OFPR_INVALID_TTL = 0, 1, 2
APP_COOKIE_MASK = 0xffffffff
LOGGED = 10          # unclaimed packet-ins logged before going quiet


class PacketInRouter:
    def __init__(self, apps):
        self.by_cookie = {}      # (app cookie, table) -> (app, handler)
        self.by_reason = {}      # switch reason -> (app, handler)
        self.unclaimed = collections.Counter()   # (reason, cookie, table)
        for app in apps:
            for table, method in app.packet_ins.items():
                stage = pl.BY_ID.get(table)
                if stage is None or not stage.may_write(app.name):
                    raise ValueError(
                        f'app {app.name} asks for packet-ins from table '
                        f'{table}, a stage it does not write')
                self.by_cookie[(app.cookie, table)] = (
                    app, getattr(app, method))
            for reason, method in app.switch_packet_ins.items():
                if reason in self.by_reason:
                    raise ValueError(
                        f'apps {self.by_reason[reason][0].name} and '
                        f'{app.name} both handle packet-ins of reason '
                        f'{reason}')
                self.by_reason[reason] = (app, getattr(app, method))

    def route(self, msg):
        """(app, handler) for a packet-in, or None: counted, dropped."""
        if msg.reason in self.by_reason:
            return self.by_reason[msg.reason]
        cookie = msg.cookie & APP_COOKIE_MASK
        found = self.by_cookie.get((cookie, msg.table_id)) \
            if msg.reason == OFPR_ACTION else None
        if found is None:
            key = (msg.reason, cookie, msg.table_id)
            self.unclaimed[key] += 1
            metrics.PACKET_INS_DROPPED.labels('none', 'unclaimed').inc()
            if sum(self.unclaimed.values()) <= LOGGED:
                LOG.warning('packet-in no app asked for (reason %d, app '
                            'cookie %#x, table %d): dropped', *key)
        return found
