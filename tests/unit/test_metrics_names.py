"""Metric names follow Prometheus conventions."""
from prometheus_client import Counter, Gauge, Histogram

from dragonflow import metrics


def test_names_units_and_kinds():
    found = [v for v in vars(metrics).values()
             if isinstance(v, (Counter, Gauge, Histogram))]
    assert len(found) >= 15
    for metric in found:
        name = metric._name
        assert name.startswith('dragonflow_'), name
        if isinstance(metric, Counter):
            # the client adds _total to the exposed name
            assert not name.endswith('_total'), name
        if isinstance(metric, Histogram):
            assert name.endswith('_seconds'), name
        assert metric._documentation
