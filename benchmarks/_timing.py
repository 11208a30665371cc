"""Interleaved timing shared by the benchmarks: this machine is shared and its load
drifts, so a ratio compares timings taken moments apart, never minutes apart."""

import statistics
import time


def rounds(fns, repeats: int, rotate: bool = True) -> dict:
    """Time every function of `fns` once per round, back to back.

    Each function is called once first (a warm-up: tracing excluded). With
    `rotate`, round `r` starts at the `r`-th function, so none always runs first.

    Args:
        fns: `{name: fn}` (each compared with the first entry) or
            `{name: (fn, floor name)}` (compared with that entry; `None`: itself).
        repeats: how many rounds.
        rotate: rotate the order of the functions from round to round.

    Returns:
        `{name: (median s, median of the per-round ratios to its floor, best s,
        ratio of the best times)}`.
    """
    first = next(iter(fns))
    calls = {
        name: entry if isinstance(entry, tuple) else (entry, first) for name, entry in fns.items()
    }
    for fn, _ in calls.values():
        fn()
    names = list(calls)
    times = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names) if rotate else 0
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            calls[name][0]()
            times[name].append(time.perf_counter() - start)
    out = {}
    for name, (_, floor) in calls.items():
        base = times[floor or name]
        ratios = [t / f for t, f in zip(times[name], base, strict=True)]
        median, best = statistics.median(times[name]), min(times[name])
        out[name] = (median, statistics.median(ratios), best, best / min(base))
    return out
