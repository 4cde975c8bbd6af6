"""Waiting for a condition in tests (the lab and ZooKeeper are real, so
results arrive asynchronously)."""
import time


def wait_until(predicate, timeout=15, interval=0.1, message='condition'):
    """Call predicate until it is true; AssertionError after timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    raise AssertionError(f'{message} not met within {timeout}s')
