"""Golden flow tests: the exact flows every app computes for the world of
``world.py``, in the full set and in the L3 flavour, compared with the
text stored in ``golden/<flavour>/<app>.flows`` (one ``dump-flows``-like
line per flow, grouped by what they are computed for).

Every flow also passes the declared pipeline check and no two owners
produce one flow. After a deliberate change of an app's flows, regenerate
with ``make golden`` and review the diff like code.
"""
import difflib
import os
import pathlib

import pytest

import world
from dragonflow.controller import apps as df_apps
from dragonflow.controller import flows as fl
from dragonflow.controller import pipeline as pl

GOLDEN = pathlib.Path(__file__).parent / 'golden'
UPDATE = os.environ.get('DF_GOLDEN_UPDATE') == '1'
FLAVOURS = {
    'full': [n for n in df_apps.APP_MODULES if n != 'l2_normal'],
    'l3_flavour': list(df_apps.L3_FLAVOUR),
}
CASES = [(flavour, app) for flavour, names in FLAVOURS.items()
         for app in names + [pl.PASS_THROUGH_APP]]


def computed(names):
    """{app name: [(key, [Flow])]} for the world, through a checked
    FlowTable (a pipeline break or a duplicate raises)."""
    state = world.state()
    apps = df_apps.load(names, world.controller(state))
    changes = list(df_apps.global_changes(apps, state)) + list(
        df_apps.changes(apps, state, {n: state.network(n) for n in
                                      state.programmed_networks()},
                        {p: state.get('logical_port', p) for p in sorted(
                            state.port_ids(state.programmed_networks()))},
                        {k: True for k in sorted(
                            df_apps.programmed_keys(apps, state))}))
    table = fl.FlowTable(check=pl.check)
    table.update(changes).raise_refused()
    out = {}
    for app, key, _ in changes:
        flows = table.flows(app, key)
        if flows:
            out.setdefault(app, []).append((heading(key), flows))
    return out


def heading(key):
    """A flow table key as the golden files head its flows."""
    if key == df_apps.GLOBAL:
        return 'global'
    if isinstance(key, tuple) and len(key) == 3:
        return f'{key[1]} {key[2]}'
    if isinstance(key, tuple):
        return f'{key[0]} {key[1]}'
    return f'network {key}'


_CACHE = {}


def render(flavour, app):
    if flavour not in _CACHE:
        _CACHE[flavour] = computed(FLAVOURS[flavour])
    lines = []
    for key, flows in _CACHE[flavour].get(app, []):
        lines.append(f'# {key}')
        lines += [fl.text(f) for f in sorted(
            flows, key=lambda f: (f.table, -f.priority, fl.text(f)))]
    return '\n'.join(lines) + '\n'


@pytest.mark.parametrize('flavour,app', CASES,
                         ids=[f'{f}-{a}' for f, a in CASES])
def test_app_flows_match_the_golden_file(flavour, app):
    path = GOLDEN / flavour / f'{app}.flows'
    text = render(flavour, app)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f'{path} missing: run make golden'
    expected = path.read_text()
    diff = ''.join(difflib.unified_diff(
        expected.splitlines(True), text.splitlines(True),
        f'{path} (golden)', 'computed now'))
    assert text == expected, f'flows of {app} changed (make golden ' \
        f'regenerates; review the diff):\n{diff}'


def test_every_golden_file_belongs_to_an_app():
    stale = [p for p in GOLDEN.glob('*/*.flows')
             if (p.parent.name, p.stem) not in CASES]
    assert not stale
