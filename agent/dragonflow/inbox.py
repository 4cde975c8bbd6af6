"""An event queue from OS threads into an eventlet hub.

The daemons embedding os-ken run its eventlet hub in the main thread
without monkey-patching, while kazoo and ovsdbapp keep real OS threads.
Those threads ``post`` events; the hub's green thread ``get``s them,
sleeping cooperatively on a wake-up pipe instead of blocking the hub.
"""
import os
import queue


class Inbox:
    def __init__(self):
        self._events = queue.Queue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def post(self, kind, payload=None):
        """Queue an event (any thread)."""
        self._events.put((kind, payload))
        try:
            os.write(self._wake_w, b'.')
        except BlockingIOError:
            pass        # the pipe is full of wake-ups already

    def get(self):
        """Next event; yields to the hub while there is none."""
        from eventlet.hubs import trampoline
        while True:
            try:
                return self._events.get_nowait()
            except queue.Empty:
                trampoline(self._wake_r, read=True)
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass

    def empty(self):
        """Whether no event is queued now."""
        return self._events.empty()

    def drain(self):
        """Every event queued now (without waiting)."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out
