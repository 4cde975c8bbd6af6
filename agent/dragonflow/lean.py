"""eventlet without what the daemons never use.

os-ken runs on eventlet, and importing eventlet (0.33, Debian 12) brings in
on its own, for features the daemons do not use:

- its green DNS resolver: dnspython (twice: a patched copy), requests,
  cryptography (~10 MB). No daemon resolves a name in a green thread.
- pyOpenSSL and cryptography, to wrap pyOpenSSL sockets (~5 MB). TLS, where
  used, goes through the standard ``ssl`` module.
- setuptools and pkg_resources, through setuptools' distutils shim, for one
  version comparison in ``eventlet.support.greenlets`` (~11 MB). Python
  3.11's own distutils serves it.

:func:`import_eventlet` imports it without them: a third of an idle
agent's memory. Importing this module does it, so a daemon's module
imports it first, before anything of os-ken's (``tests/unit/test_lean.py``
checks the daemons' modules load none of the three).
"""
import os
import sys

_BLOCKED = 'OpenSSL'
_MISSING = object()


def import_eventlet():
    """Import eventlet leanly (once; later imports are free). Call before
    the first import of eventlet or os-ken's hub in the process."""
    if 'eventlet' in sys.modules:
        return sys.modules['eventlet']
    # Read by eventlet.support.greendns when it is imported.
    os.environ.setdefault('EVENTLET_NO_GREENDNS', 'yes')
    shim = None
    if sys.version_info < (3, 12) and 'distutils' not in sys.modules:
        try:
            import _distutils_hack as shim
        except ImportError:
            pass
        else:
            shim.remove_shim()
    # eventlet.greenio tries pyOpenSSL and defines stand-ins without it;
    # code importing OpenSSL later still gets the real one.
    saved = sys.modules.get(_BLOCKED, _MISSING)
    sys.modules[_BLOCKED] = None
    try:
        import eventlet
        import eventlet.greenio  # noqa: F401
    finally:
        if saved is _MISSING:
            del sys.modules[_BLOCKED]
        else:
            sys.modules[_BLOCKED] = saved
        if shim is not None:
            shim.add_shim()
    return eventlet


import_eventlet()
