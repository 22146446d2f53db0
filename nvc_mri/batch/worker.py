"""Analyse one study of a batch inside a worker process; the model is loaded once per process.

``analyze_study`` never raises for a bad study: it writes ``error.json`` into the study's
output folder and returns a failed row, so one study never stops the rest.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from nvc_mri import __version__
from nvc_mri.batch.discover import Study, fingerprint
from nvc_mri.batch.summary import failure_row, report_row

_networks = {}  # weights path -> Networks, per process


def networks_for(weights: str | None):
    """The U-Nets of this process (loaded on first use, then reused for every study)."""
    from nvc_mri.segment.model import load_networks

    key = weights or "shipped"
    if key not in _networks:
        _networks[key] = load_networks(weights)
    return _networks[key]


def device_problem(device: str) -> str | None:
    """Why this worker cannot run on ``device`` (no CUDA, no such GPU), or None when it can."""
    from nvc_mri.errors import InputError
    from nvc_mri.segment.inference import select_device

    try:
        select_device(device)
    except InputError as exc:
        return exc.problem
    return None


@contextlib.contextmanager
def study_input(study: Study) -> Iterator[Path]:
    """A path ``load_volume`` reads: the file itself, or a folder of links to one DICOM study's files."""
    if study.kind != "dicom":
        yield Path(study.files[0])
        return
    with tempfile.TemporaryDirectory(prefix="nvc-study-") as tmp:
        for i, path in enumerate(study.files):
            (Path(tmp) / f"{i:06d}.dcm").symlink_to(Path(path).resolve())
        yield Path(tmp)


def named_as_the_user_gave_it(error: Exception, staged: Path, study: Study) -> Exception:
    """``error`` naming the study by its batch name instead of the temporary folder of links it was read through
    (gone when the batch ends, and meaningless to the user). Not by its folder: DICOM folders are often named
    after the patient, and this line goes to the log; the summary maps the name to the input."""
    from nvc_mri.errors import InputError

    if not isinstance(error, InputError) or study.kind != "dicom":
        return error
    where = Path(error.path)
    if where == staged or where.parent == staged:
        return InputError(study.name, error.problem)
    return error


def output_is_current(study: Study, outdir: Path, expected: str) -> bool:
    """True when ``outdir`` holds a complete report made from the same input, config and model."""
    try:
        recorded = json.loads((outdir / "fingerprint.json").read_text())["fingerprint"]
        return recorded == expected and (outdir / "report.json").is_file()
    except (OSError, ValueError, KeyError):
        return False


def analyze_study(study: Study, output_root: str, *, device: str = "cpu", config: str | None = None, weights: str | None = None,
                  threads: int | None = None, force: bool = False) -> dict:
    """Analyse ``study`` into ``output_root/<study.name>`` and return its summary row."""
    from nvc_mri.analysis import run_analysis
    from nvc_mri.config import active_config_digest, use_config
    from nvc_mri.report import write_error, write_outputs
    from nvc_mri.segment.inference import configure_threads

    configure_threads(threads)
    outdir = Path(output_root) / study.name
    t0 = time.perf_counter()
    try:
        with use_config(config):
            networks = networks_for(weights)
            stamp = fingerprint(study, active_config_digest(), networks.sha256 or "", __version__)
            with study_input(study) as path:
                try:
                    analysis = run_analysis(path, device=device, networks=networks, force=force)
                except Exception as exc:
                    raise named_as_the_user_gave_it(exc, path, study) from exc
            analysis.report.input.path = study.source
            write_outputs(analysis, outdir, extra_files={"fingerprint.json": json.dumps({"fingerprint": stamp, "study": study.name})})
        return report_row(study, analysis.report, time.perf_counter() - t0)
    except Exception as exc:  # one bad study never stops the batch
        write_error(outdir, study.source, exc)
        return failure_row(study, exc, time.perf_counter() - t0)
