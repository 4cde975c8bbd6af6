"""The IDL hands Interface rows to the agent's callback on its own thread
and other rows to the event handler only for watched tables."""
import types

from dragonflow.controller import ovsdb


class Handler:
    def __init__(self):
        self.seen = []

    def notify(self, event, row, updates=None):
        self.seen.append((event, row._table.name))


def row(table, **columns):
    return types.SimpleNamespace(_table=types.SimpleNamespace(name=table),
                                 **columns)


def idl(watched=()):
    made = object.__new__(ovsdb._Idl)        # no OVSDB connection needed
    made.notify_handler, made.watched_tables = Handler(), set(watched)
    made.on_interface = None
    return made


def test_rows_of_unwatched_tables_are_not_handed_on():
    made = idl(watched={'Bridge'})
    for table in ('Port', 'Bridge', 'Open_vSwitch', 'Bridge'):
        made.notify('update', row(table))
    assert made.notify_handler.seen == [('update', 'Bridge')] * 2
    made.cooperative_yield()                 # no sleep(0) per row


def test_interface_rows_go_to_the_callback_as_they_are():
    ovs = object.__new__(ovsdb.Ovs)
    ovs.idl = idl()
    ovs.api = types.SimpleNamespace(db_find=lambda *a, **k: types.
                                    SimpleNamespace(execute=lambda **k: []))
    seen = []
    ovs.watch_interfaces(lambda *args: seen.append(args))
    plugged = row('Interface', name='tap1', ofport=[7],
                  external_ids={'iface-id': 'p1'})
    ovs.idl.notify('update', plugged)
    ovs.idl.notify('delete', plugged)
    ovs.idl.notify('create', row('Interface', name='tap2', ofport=[],
                                 external_ids={}))
    assert seen == [('tap1', 'p1', 7), ('tap1', 'p1', None),
                    ('tap2', None, None)]
    assert ovs.idl.notify_handler.seen == []


def test_watching_an_event_watches_its_table():
    ovs = object.__new__(ovsdb.Ovs)
    ovs.idl = types.SimpleNamespace(watched_tables=set())
    ovs.handler = types.SimpleNamespace(watched=[])
    ovs.handler.watch_event = ovs.handler.watched.append
    ovs._watch(ovsdb.ControllerLostEvent('br-int', lambda: None))
    assert ovs.idl.watched_tables == {'Bridge'}
    assert len(ovs.handler.watched) == 1
