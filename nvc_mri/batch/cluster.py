"""The same batch on a Dask distributed cluster (``pip install "nvc-mri[dask]"``).

Each Dask worker process loads the model once (module-level cache in ``nvc_mri.batch.worker``).
At most as many studies as the cluster has worker threads are in flight, so a study's time
counts from when it starts; one past the timeout is cancelled and recorded as failed (its
thread cannot be interrupted and finishes in the background). When a worker dies, the
scheduler reruns its studies elsewhere; outputs are atomic, so each study ends complete once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator

from nvc_mri.batch.discover import Study
from nvc_mri.batch.summary import failure_row
from nvc_mri.errors import InputError


def connect(scheduler):
    """A ``distributed.Client`` for an address (``tcp://host:8786``) or an existing cluster object."""
    try:
        from distributed import Client
    except ImportError:
        raise InputError(str(scheduler), 'Dask distributed is not installed: pip install "nvc-mri[dask]"') from None
    return Client(scheduler)


@contextlib.contextmanager
def cluster_client(scheduler, device: str) -> Iterator:
    """A client of ``scheduler`` (an address, a cluster, or a client, used as it is) whose workers can all use
    ``device``; one made here is closed at the end."""
    client = scheduler if hasattr(scheduler, "submit") else connect(scheduler)
    try:
        check_workers_device(client, device)
        yield client
    finally:
        if client is not scheduler:
            client.close()


def _capacity(client) -> int:
    workers = client.scheduler_info().get("workers", {})
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))


def check_workers_device(client, device: str) -> None:
    """Refuse a batch the cluster's workers cannot run: every study would fail on a worker without the device.

    Only the workers connected now are asked (none may be yet: studies then wait for them, as before); a worker
    that joins later and lacks the device fails its studies one by one, each with the reason.
    """
    from nvc_mri.batch.worker import device_problem

    answers = client.run(device_problem, device)
    lacking = sorted(address for address, problem in answers.items() if problem)
    if lacking:
        problem = answers[lacking[0]]
        listed = ", ".join(lacking[:3]) + (f" and {len(lacking) - 3} more" if len(lacking) > 3 else "")
        raise InputError(f"--device {device}", f"{len(lacking)} of {len(answers)} Dask workers cannot use it "
                                               f"({listed}: {problem}); use --device auto or cpu")


def run_dask(studies: Iterable[Study], output_root: str, on_row: Callable[[dict], None], client, *,
             timeout_s: float | None = None, options: dict | None = None) -> None:
    """Analyse ``studies`` on the cluster of ``client`` (see :func:`cluster_client`), calling ``on_row`` with
    each study's summary row."""
    from distributed import wait

    from nvc_mri.batch.worker import analyze_study

    pending = list(studies)[::-1]
    running: dict = {}
    while pending or running:
        while pending and len(running) < _capacity(client):
            study = pending.pop()
            future = client.submit(analyze_study, study, output_root, pure=False, retries=1, **(options or {}))
            running[future] = (study, time.monotonic())
        try:
            done, _ = wait(list(running), timeout=0.5, return_when="FIRST_COMPLETED")
        except TimeoutError:  # nothing finished within the poll interval
            done = []
        for future in done:
            study, started = running.pop(future)
            try:
                on_row(future.result())
            except Exception as exc:  # the task itself failed twice (e.g. its workers kept dying)
                on_row(failure_row(study, exc, time.monotonic() - started, 2))
        for future, (study, started) in list(running.items()):
            if timeout_s and time.monotonic() - started > timeout_s:
                future.cancel()
                running.pop(future)
                on_row(failure_row(study, f"timed out after {timeout_s:.0f} s", time.monotonic() - started))
