"""The IDL hands the event handler rows of watched tables only."""
import types

from dragonflow.controller import ovsdb


class Handler:
    def __init__(self):
        self.seen = []

    def notify(self, event, row, updates=None):
        self.seen.append((event, row._table.name))


def row(table):
    return types.SimpleNamespace(_table=types.SimpleNamespace(name=table))


def test_rows_of_unwatched_tables_are_not_handed_on():
    idl = object.__new__(ovsdb._Idl)        # no OVSDB connection needed
    idl.notify_handler, idl.watched_tables = Handler(), {'Interface'}
    for table in ('Interface', 'Port', 'Bridge', 'Interface'):
        idl.notify('create', row(table))
    assert idl.notify_handler.seen == [('create', 'Interface')] * 2
    idl.cooperative_yield()                 # no sleep(0) per row


def test_watching_an_event_watches_its_table():
    ovs = object.__new__(ovsdb.Ovs)
    ovs.idl = types.SimpleNamespace(watched_tables=set())
    ovs.handler = types.SimpleNamespace(watched=[])
    ovs.handler.watch_event = ovs.handler.watched.append
    ovs._watch(ovsdb.ControllerLostEvent('br-int', lambda: None))
    assert ovs.idl.watched_tables == {'Bridge'}
    assert len(ovs.handler.watched) == 1
