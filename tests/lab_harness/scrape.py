"""Read a daemon's Prometheus /metrics (tests): from inside the network
namespace it runs in (the daemons listen on 127.0.0.1 by default)."""
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

FETCH = ('import sys, urllib.request\n'
         'opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n'
         'sys.stdout.write(opener.open(sys.argv[1], timeout=5).read().decode())')


def scrape(ns, port, address='127.0.0.1'):
    """{(name, frozenset(labels.items())): value} of every sample."""
    text = subprocess.run(
        ['ip', 'netns', 'exec', ns, sys.executable, '-c', FETCH,
         f'http://{address}:{port}/metrics'], capture_output=True,
        text=True, check=True, timeout=30).stdout
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = \
                sample.value
    return out


def total(samples, name, **labels):
    """Sum of a metric's samples whose labels include these."""
    want = set(labels.items())
    return sum(v for (n, l), v in samples.items()
               if n == name and want <= set(l))
