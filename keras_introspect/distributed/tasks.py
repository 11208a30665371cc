"""Run per-chunk tasks here or on a Dask cluster, with a Keras progress bar."""

from __future__ import annotations

import itertools
import os

from keras_introspect.distributed._deps import require


def run(tasks, client=None, progbar=None) -> list:
    """Compute `tasks`, an iterable of `(dask.delayed task, n_images)`; their results in order.

    The iterable is consumed lazily, so tasks that carry their images (a
    numpy array, a stream) are made only when there is room for them. At
    most twice the cluster's threads (here: the number of cores, up to 4)
    are submitted and not finished at a time, which bounds the memory they
    hold. An error in a task stops the run and is raised here;
    the chunks written before it stay written.

    Args:
        tasks: iterable of `(task, n_images)`.
        client: a `distributed.Client`, or `None` to compute here with
            Dask's default scheduler.
        progbar: a `keras.utils.Progbar` counting images, or `None`.
    """
    dask = require("dask")
    tasks = iter(tasks)
    results = []
    if client is None:
        window = min(4, os.cpu_count() or 1)
        while group := list(itertools.islice(tasks, window)):
            results.extend(dask.compute(*[t for t, _ in group]))
            if progbar is not None:
                progbar.add(sum(n for _, n in group))
        return results
    distributed = require("distributed")
    window = 2 * max(1, sum(client.nthreads().values()))
    running = distributed.as_completed(loop=client.loop)
    sizes = {}

    def submit() -> bool:
        item = next(tasks, None)
        if item is None:
            return False
        future = client.compute(item[0])
        sizes[future.key] = (len(results), item[1])
        results.append(None)
        running.add(future)
        return True

    for _ in range(window):
        if not submit():
            break
    try:
        for future in running:
            position, size = sizes.pop(future.key)
            results[position] = future.result()  # raises the task's error here
            if progbar is not None:
                progbar.add(size)
            submit()
    except BaseException:
        for future in list(running.futures):
            future.cancel()
        raise
    return results


def current_client():
    """The Dask client this process uses by default, or `None`."""
    try:
        import distributed
    except ImportError:
        return None
    try:
        return distributed.default_client()
    except ValueError:
        return None
