"""The daemons' log lines: one line per event, with stable key=value
fields, so ``journalctl -u df-local-controller | grep port=<id>`` finds
every event of a port.

A line is ``<time> <LEVEL> <logger>: <message> key=value ...``: the
message as it reads, then the fields the call gave (``extra=``, see
:func:`fields`) among :data:`FIELDS`, in that order, values quoted when
they hold spaces. An exception becomes ``error="<Type>: <message>"
at=<file>:<line>`` on the same line; the traceback follows (on more
lines) only with ``--debug``. Newlines in messages are escaped.
"""
import logging
import os
import traceback

FIELDS = ('chassis', 'port', 'network', 'router', 'app', 'table', 'peer',
          'prefix', 'generation', 'flows', 'datapath', 'service')


def fields(**values):
    """``extra=`` for a log call: LOG.info('...', extra=fields(port=p))."""
    return {k: v for k, v in values.items() if v is not None}


def _value(value):
    text = str(value).replace('\n', '\\n')
    if not text or any(c in text for c in ' "='):
        return '"' + text.replace('"', '\\"') + '"'
    return text


class KeyValueFormatter(logging.Formatter):
    def __init__(self, debug=False):
        super().__init__('%(asctime)s %(levelname)s %(name)s: %(message)s')
        self.debug = debug

    def format(self, record):
        record.message = record.getMessage().replace('\n', '\\n')
        parts = [f'{self.formatTime(record)} {record.levelname} '
                 f'{record.name}: {record.message}']
        for key in FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                parts.append(f'{key}={_value(value)}')
        details = ''
        if record.exc_info and record.exc_info[0] is not None:
            kind, error, tb = record.exc_info
            parts.append(f'error={_value(f"{kind.__name__}: {error}")}')
            frames = traceback.extract_tb(tb) if tb else []
            if frames:
                parts.append(f'at={os.path.basename(frames[-1].filename)}:'
                             f'{frames[-1].lineno}')
            if self.debug:
                details = '\n' + ''.join(
                    traceback.format_exception(*record.exc_info)).rstrip()
        return ' '.join(parts) + details
