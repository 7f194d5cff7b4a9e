"""An ordered, lazy ``map`` over a process pool, or plain ``map`` for one worker.

Results come back in input order, so a batch's output does not depend on the number
of workers. Workers are forked, so caches loaded before (the substitution model)
are shared rather than reloaded.
"""

from __future__ import annotations

from typing import Any


class ordered_map:  # noqa: N801 - used like a function: ``with ordered_map(2) as mapper``
    def __init__(self, workers: int, chunksize: int = 2) -> None:
        self.workers = workers
        self.chunksize = chunksize
        self.pool: Any = None

    def __enter__(self) -> Any:
        if self.workers <= 1:
            return map
        import multiprocessing

        self.pool = multiprocessing.get_context("fork").Pool(self.workers)
        return lambda fn, items: self.pool.imap(fn, items, chunksize=self.chunksize)

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()  # an early stop (n reached) must not wait for queued work
            self.pool.join()


def progress(items: Any, enabled: bool, **tqdm_args: Any) -> Any:
    """Wrap ``items`` in a tqdm bar when ``enabled`` (the CLI passes ``stderr.isatty()``)."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, **tqdm_args)


class WorkerPool:
    """A reusable process pool with a blocking, ordered ``map`` (plain map for one worker).

    Generators that stop at ``n`` results submit work in rounds through ``map``, so a
    pool can serve several batches without computing far past each batch's end.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: Any = None

    def __enter__(self) -> WorkerPool:
        if self.workers > 1:
            import multiprocessing

            self.pool = multiprocessing.get_context("fork").Pool(self.workers)
        return self

    def map(self, fn: Any, items: list[Any]) -> list[Any]:
        if self.pool is None:
            return [fn(item) for item in items]
        return self.pool.map(fn, items, chunksize=1)

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
