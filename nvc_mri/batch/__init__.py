"""Folder-to-folder batch analysis: every study under INPUT_ROOT into its own folder under OUTPUT_ROOT.

One bad or hung study never stops the batch (``failures.csv`` says why); ``summary.csv`` and
``summary.json`` are rewritten atomically as studies finish; ``resume=True`` skips studies whose
outputs are complete and were made from the same input, config and model (``fingerprint.json``).
Local runs use worker processes (torch threads divided among them); ``scheduler=`` runs the
same batch on a Dask distributed cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from nvc_mri import __version__
from nvc_mri.atomic import atomic_write_text
from nvc_mri.batch.discover import Study, find_studies, fingerprint
from nvc_mri.batch.summary import Summary, report_row
from nvc_mri.errors import InputError

__all__ = ["Study", "find_studies", "run_batch"]


def _remove_stale_temporaries(output_root: Path) -> None:
    """Half-written outputs of a killed run (temporary folders) are removed; they are redone."""
    for path in output_root.glob(".*.tmp-*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _current_outputs(studies: list[Study], output_root: Path, config: str | None, weights: str | None) -> dict[str, dict]:
    """Rows of the studies whose outputs are complete and current (for resume)."""
    from nvc_mri.batch.worker import output_is_current
    from nvc_mri.config import active_config_digest, use_config
    from nvc_mri.report.schema import Report
    from nvc_mri.segment.model import file_sha256, shipped_weights_path

    model_sha = file_sha256(weights or shipped_weights_path())
    with use_config(config):
        config_digest = active_config_digest()
    rows = {}
    for study in studies:
        outdir = output_root / study.name
        if output_is_current(study, outdir, fingerprint(study, config_digest, model_sha, __version__)):
            report = Report.model_validate_json((outdir / "report.json").read_text())
            rows[study.name] = dict(report_row(study, report, report.timings_s.get("total", 0.0)), status="skipped")
    return rows


def run_batch(input_root: str | Path, output_root: str | Path, *, workers: int = 1, scheduler=None, resume: bool = False,
              timeout_s: float | None = None, device: str = "cpu", config: str | Path | None = None,
              weights: str | Path | None = None, force: bool = False,
              on_start: Callable[[int, int], None] | None = None, on_row: Callable[[dict], None] | None = None) -> Summary:
    """Analyse every study under ``input_root``.

    Parameters
    ----------
    input_root, output_root : path
    workers : int
        Local worker processes (ignored with ``scheduler``).
    scheduler : str or distributed cluster/client, optional
        Run on Dask distributed instead (``tcp://host:8786``).
    resume : bool
        Skip studies whose outputs are complete and current.
    timeout_s : float, optional
        A study running longer is stopped and recorded as failed.
    device, config, weights, force
        As for ``nvc-mri analyze``.
    on_start : callable(total, skipped), optional
    on_row : callable(row), optional
        Called after each study finishes (progress display).

    Returns
    -------
    Summary
        Rows by study name; ``summary.csv``, ``summary.json`` and ``failures.csv`` are on disk.
    """
    from nvc_mri.report.write import write_error

    input_root, output_root = Path(input_root), Path(output_root)
    if not input_root.exists():
        raise InputError(input_root, "input folder not found")
    if workers < 1 or (timeout_s is not None and not timeout_s > 0):
        raise InputError(f"--workers {workers} --timeout-per-study {timeout_s}", "workers must be 1 or more and a timeout more than 0 s")
    from nvc_mri.segment.inference import check_device_name, select_device

    check_device_name(device)  # a misspelt device would fail every study
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            select_device(device)  # local workers use this machine's devices
            client = None
        else:  # a cluster's workers are asked there, before anything is written
            from nvc_mri.batch.cluster import cluster_client

            client = stack.enter_context(cluster_client(scheduler, device))
        studies = find_studies(input_root, exclude=output_root)
        if not studies:  # a mistyped or unmounted input folder must not pass for a finished batch
            raise InputError(input_root, "no NIfTI file, zip or DICOM study found here")
        output_root.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(output_root)
        summary = Summary(output_root)
        done = _current_outputs(studies, output_root, str(config) if config else None, str(weights) if weights else None) if resume else {}
        for row in done.values():
            summary.rows[row["study"]] = row
        todo = [s for s in studies if s.name not in done]
        summary.write()
        if on_start:
            on_start(len(studies), len(done))
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
        options = dict(device=device, config=str(config) if config else None, weights=str(weights) if weights else None, force=force)

        def finished(row: dict) -> None:
            if row["status"] == "failed" and row["reason"].startswith("timed out"):
                write_error(output_root / row["study"], row["input"], row["reason"])
            summary.record(row)
            if on_row:
                on_row(row)

        if client is not None:
            from nvc_mri.batch.cluster import run_dask

            run_dask(todo, str(output_root), finished, client, timeout_s=timeout_s, options=options)
        else:
            from nvc_mri.batch.local import run_local

            run_local(todo, str(output_root), finished, workers=workers, timeout_s=timeout_s, options=dict(options, threads=threads))
        atomic_write_text(output_root / "batch.json", json.dumps({"software": __version__, "studies": len(studies), **summary.counts}, indent=2))
        return summary
