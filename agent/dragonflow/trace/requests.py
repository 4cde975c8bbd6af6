"""Physical trace requests through ZooKeeper: no new listening port, the
same credentials and ACLs as the NB.

``dfctl`` creates an *ephemeral sequential* node under
``<root>/trace/<chassis>`` holding the request; the chassis' agent
watches that directory, runs the trace and writes its answer into the
same node (``{"request": ..., "result": ...}``, compare-and-set on the
node's version); ``dfctl`` reads it and deletes the node. A ``dfctl``
that dies leaves nothing behind: its session's ephemeral nodes go with
it, and an agent's answer to a node that is gone is dropped.
"""
import json
import threading

from kazoo import exceptions as kz


def chassis_dir(layout, chassis_id):
    return f'{layout.trace}/{chassis_id}'


def ask(client, layout, chassis_id, request, timeout):
    """The chassis' answer (a dict), or None after timeout seconds."""
    base = chassis_dir(layout, chassis_id)
    client.ensure_path(base)
    path = client.create(f'{base}/req-', json.dumps(
        {'request': request}).encode(), ephemeral=True, sequence=True)
    answered = threading.Event()
    found = {}

    def watch(data, stat, event=None):
        if data:
            try:
                body = json.loads(data)
            except ValueError:
                return
            if 'result' in body:
                found['result'] = body['result']
                answered.set()
                return False        # stop watching
        return None
    try:
        client.DataWatch(path, watch)
        answered.wait(timeout)
        return found.get('result')
    finally:
        try:
            client.delete(path)
        except kz.NoNodeError:
            pass


def pending(client, path):
    """(request, version) of a request node no one answered yet, or
    None (answered, gone, or not a request)."""
    try:
        data, stat = client.get(path)
        body = json.loads(data)
    except (kz.NoNodeError, ValueError):
        return None
    if not isinstance(body, dict) or 'result' in body or \
            not isinstance(body.get('request'), dict):
        return None
    return body['request'], stat.version


def answer(client, path, request, version, result):
    """Write the answer unless the asker is gone (False then)."""
    try:
        client.set(path, json.dumps({'request': request, 'result': result},
                                    default=str).encode(), version=version)
        return True
    except (kz.NoNodeError, kz.BadVersionError):
        return False
