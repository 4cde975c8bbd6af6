"""The lab the controller-side benchmarks run in, and their JSON output."""
import contextlib
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'agent'))

from dragonflow.lab.netlab import NetLab  # noqa: E402
from dragonflow.nb.api import NbApi  # noqa: E402
from dragonflow.store import zk  # noqa: E402


@contextlib.contextmanager
def lab_session(prefix, underlay, chassis):
    """A lab with these chassis and agents running: yields (lab, NbApi);
    everything is torn down afterwards."""
    lab = NetLab(tempfile.mkdtemp(prefix=f'df-{prefix}-'), prefix=prefix,
                 underlay=underlay)
    client = None
    try:
        lab.create().start_chassis(chassis)
        client = zk.make_client(lab.zk_address)
        client.start(timeout=20)
        yield lab, NbApi(client)
    finally:
        if client is not None:
            client.stop()
            client.close()
        lab.destroy()
        lab.remove_dir()


def write_json(path, results):
    if path:
        with open(path, 'w') as f:
            json.dump(results, f, indent=2)
