"""One log line per event with key=value fields; exceptions on the same
line (the traceback only with --debug)."""
import logging

from dragonflow import logs


def record(msg, *args, exc=False, **extra):
    exc_info = None
    if exc:
        try:
            raise ConnectionError('lost the switch\nreally')
        except ConnectionError:
            import sys
            exc_info = sys.exc_info()
    rec = logging.LogRecord('dragonflow.controller.service', logging.INFO,
                            __file__, 1, msg, args, exc_info)
    rec.__dict__.update(extra)
    return rec


def test_fields_follow_the_message_in_a_stable_order():
    line = logs.KeyValueFormatter().format(record(
        'port %s bound to %s', 'p1', 'ch1',
        **logs.fields(chassis='ch1', port='p1', app=None)))
    assert line.endswith(' INFO dragonflow.controller.service: port p1 '
                         'bound to ch1 chassis=ch1 port=p1')


def test_values_with_spaces_are_quoted_and_newlines_escaped():
    line = logs.KeyValueFormatter().format(record(
        'a\nb', app='two words', table=55))
    assert '\n' not in line
    assert line.endswith(': a\\nb app="two words" table=55')


def test_an_exception_stays_on_the_line_unless_debugging():
    failed = record('failed', exc=True)     # one record: one timestamp
    line = logs.KeyValueFormatter().format(failed)
    assert '\n' not in line and 'Traceback' not in line
    assert 'error="ConnectionError: lost the switch\\nreally" ' \
        'at=test_log_format.py:' in line
    debug = logs.KeyValueFormatter(debug=True).format(failed)
    assert debug.splitlines()[0] == line.splitlines()[0]
    assert 'Traceback (most recent call last):' in debug


def test_test_modules_have_unique_basenames():
    """pytest (rootdir conftest, no packages) cannot collect two test
    modules of one basename: a guard, since CI stops at collection."""
    import collections
    import pathlib
    tests = pathlib.Path(__file__).resolve().parent.parent
    names = collections.Counter(p.name for p in tests.rglob('test_*.py'))
    assert [n for n, c in names.items() if c > 1] == []
