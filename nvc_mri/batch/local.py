"""Local worker processes: one study at a time each, a timeout per study, dead workers replaced.

A worker that exceeds the timeout is killed (its study is recorded as failed) and a fresh one
takes its place; a worker that dies (killed, out of memory, crashed native code) is replaced
and its study retried once.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from collections import deque
from collections.abc import Callable, Iterable

from nvc_mri.batch.discover import Study
from nvc_mri.batch.summary import failure_row


def _worker_main(tasks, results, options: dict) -> None:
    from nvc_mri.batch.worker import analyze_study, networks_for
    from nvc_mri.config import use_config

    with use_config(options.get("config")):
        networks_for(options.get("weights"))  # load the model once, before the first study
    while True:
        job = tasks.get()
        if job is None:
            return
        job_id, study, output_root = job
        results.put((job_id, analyze_study(study, output_root, **options)))


class _Slot:
    def __init__(self, ctx, results, options: dict):
        self.tasks = ctx.Queue()
        self.process = ctx.Process(target=_worker_main, args=(self.tasks, results, options), daemon=True)
        self.process.start()
        self.job: tuple | None = None
        self.started = 0.0

    def give(self, job: tuple) -> None:
        self.job, self.started = job, time.monotonic()
        self.tasks.put(job)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            self.tasks.put(None)
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


def run_local(studies: Iterable[Study], output_root: str, on_row: Callable[[dict], None], *, workers: int = 1,
              timeout_s: float | None = None, options: dict | None = None) -> None:
    """Analyse ``studies`` in ``workers`` processes, calling ``on_row`` with each study's summary row."""
    options = dict(options or {})
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    pending = deque((i, study, output_root) for i, study in enumerate(studies))
    attempts: dict[int, int] = {}
    slots = [_Slot(ctx, results, options) for _ in range(max(1, min(workers, len(pending))))]
    try:
        while pending or any(s.job for s in slots):
            for slot in slots:
                if slot.job is None and pending:
                    job = pending.popleft()
                    attempts[job[0]] = attempts.get(job[0], 0) + 1
                    slot.give(job)
            try:
                job_id, row = results.get(timeout=0.2)
                for slot in slots:
                    if slot.job and slot.job[0] == job_id:
                        slot.job = None
                on_row(row)
            except queue.Empty:
                pass
            for k, slot in enumerate(slots):
                if slot.job is None:
                    continue
                study = slot.job[1]
                elapsed = time.monotonic() - slot.started
                if not slot.process.is_alive():
                    if attempts[slot.job[0]] < 2:
                        pending.appendleft(slot.job)
                    else:
                        on_row(failure_row(study, f"worker process died twice (exit code {slot.process.exitcode})", elapsed, 2))
                    slots[k] = _Slot(ctx, results, options)
                elif timeout_s and elapsed > timeout_s:
                    slot.stop(kill=True)
                    on_row(failure_row(study, f"timed out after {timeout_s:.0f} s", elapsed, attempts[slot.job[0]]))
                    slots[k] = _Slot(ctx, results, options)
    finally:
        for slot in slots:
            slot.stop(kill=slot.job is not None)
