"""The one timing loop every benchmark uses."""

import statistics
import time


def median_seconds(cases: dict, repeat: int, check=None) -> dict:
    """{label: median wall seconds} of each zero-argument callable in `cases`, run round-robin
    `repeat` times so that drift in the machine's speed (other tenants, memory reclaim, frequency)
    hits every case alike. `check(label, result)`, if given, sees every run's result (outside the
    clock); the result is dropped before the next case runs."""
    times = {label: [] for label in cases}
    for _ in range(repeat):
        for label, fn in cases.items():
            start = time.perf_counter()
            result = fn()
            times[label].append(time.perf_counter() - start)
            if check is not None:
                check(label, result)
            del result
    return {label: statistics.median(t) for label, t in times.items()}
