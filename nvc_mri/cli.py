"""The ``nvc-mri`` command line."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nvc_mri.errors import InputError, error_line

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
# No markup in what is printed: paths, file names and DICOM descriptions may hold square brackets ("[draft]",
# "[/x]"), which Rich would otherwise drop or fail on. Styles go in through `styled`.
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)


def styled(label: str, style: str, rest: str = "") -> Text:
    """``label`` in ``style`` followed by ``rest`` as plain text."""
    return Text.assemble((label, style), rest)


_state = {"debug": False}


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    """nvc-mri: neurovascular conflict analysis of CISS/FIESTA MRI (coordinates in RAS+ mm)."""
    _state["debug"] = debug


def friendly_errors(func: Callable) -> Callable:
    """Turn errors into one line on stderr and a non-zero exit (a traceback only with --debug)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            if _state["debug"]:
                raise
            err_console.print(styled("error:", "bold red", f" {exc}"), highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # anything unexpected still gets one line
            if _state["debug"]:
                raise
            if isinstance(exc, OSError) and exc.filename:
                # a path the user gave or chose (an output folder that cannot be made, a file that cannot be read)
                err_console.print(styled("error:", "bold red", f" {exc.filename}: {exc.strerror or exc}"), highlight=False, soft_wrap=True)
                raise typer.Exit(code=2) from None
            # --debug is an option of nvc-mri itself, before the command (`nvc-mri analyze ... --debug` is refused);
            # commands take their function's name, as typer names them
            command = func.__name__.replace("_", "-")
            err_console.print(styled("error:", "bold red", f" {error_line(exc)} (for the traceback rerun as: nvc-mri --debug {command} ...)"),
                              highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None

    return wrapper


def _info_dict(path: Path, series: str | None) -> dict:
    from nvc_mri.io import load_volume, scan

    found = []
    if path.is_dir():
        found = [c.summary() for c in scan(path)[0]]
    elif path.is_file():
        try:  # a zip or a DICOMDIR (by its name or its SOP class) lists its series too
            found = [c.summary() for c in scan(path)[0]]
        except InputError:  # an image file or one DICOM file: nothing to list; loading names any problem
            pass
    try:
        volume = load_volume(path, series=series)
    except InputError as exc:
        if not found:
            raise
        # the series are still worth listing: they show why none could be chosen (e.g. several studies)
        return {"input": str(path), "series_found": found, "chosen": None, "error": exc}
    for s in found:
        s["chosen"] = (s["series_instance_uid"], s["part"]) == (volume.meta.series_instance_uid, volume.meta.series_part)
    return {
        "input": str(path),
        "series_found": found,
        "chosen": {
            "series_instance_uid": volume.meta.series_instance_uid,
            "series_description": volume.meta.series_description,
            "series_part": volume.meta.series_part,
            "reason": volume.meta.selection_reason,
            "format": volume.meta.format,
            "shape": list(volume.shape),
            "spacing_mm": [round(s, 4) for s in volume.spacing],
            "orientation": volume.orientation,
            "affine_ras": [[round(float(v), 5) for v in row] for row in volume.affine],
            "sequence": volume.meta.sequence.model_dump(),
            "is_heavily_t2_3d": volume.meta.is_heavily_t2_3d,
            "warnings": volume.meta.warnings,
        },
    }


@app.command()
@friendly_errors
def info(
    input: Path = typer.Argument(..., help="DICOM file, folder (or its DICOMDIR) or zip; NIfTI, NRRD, MetaImage or MGH file."),
    series: str | None = typer.Option(None, help="SeriesInstanceUID or series number to load; 3#2 for one part (echo, orientation) of series 3, as listed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """List the series found, which one is chosen and why, and its geometry (RAS+ mm)."""
    data = _info_dict(input, series)
    error = data.pop("error", None)
    if as_json:
        sys.stdout.write(json.dumps(data | ({"error": str(error)} if error else {}), indent=2) + "\n")
        if error:
            raise error
        return
    if data["series_found"]:
        table = Table(title=f"Series in {input}")
        for col in ("#", "description", "images", "size", "guess", "conf.", "chosen"):
            table.add_column(col)
        for s in data["series_found"]:
            guess = s["family"] + (f" ({s['name']})" if s["name"] else "")
            description = s["description"] + (f" ({s['part']})" if s["part"] else "")
            table.add_row(s["label"], description, str(s["images"]), f"{s['rows']}x{s['columns']}",
                          guess, f"{s['confidence']:.2f}", "yes" if s.get("chosen") else (s["problem"] or ""))
        console.print(table)
    if error:
        raise error
    c = data["chosen"]
    seq = c["sequence"]
    part = f", {c['series_part']}" if c["series_part"] else ""
    console.print(styled("Chosen:", "bold", f" {c['series_description'] or input}{part} ({c['format']})"))
    if c["reason"]:
        console.print(f"  why: {c['reason']}")
    console.print(f"  shape {tuple(c['shape'])}, spacing {tuple(c['spacing_mm'])} mm, orientation {c['orientation']} (affine to RAS+ mm)")
    console.print(f"  sequence: {seq['family']}{' (' + seq['name'] + ')' if seq['name'] else ''}, "
                  f"confidence {seq['confidence']:.2f} from {seq['basis']}")
    if not c["is_heavily_t2_3d"]:
        console.print(styled("  not a heavily T2-weighted 3D series (CISS/FIESTA/SPACE): NVC analysis would be unreliable", "yellow"))
    for w in c["warnings"]:
        console.print(styled("  warning:", "yellow", f" {w}"))


@app.command()
@friendly_errors
def phantom(
    outdir: Path = typer.Argument(..., help="Folder that receives one sub-folder per case."),
    n: int = typer.Option(1, "--n", help="Number of cases (ignored by the eval and hard presets unless smaller)."),
    seed: int = typer.Option(0, "--seed", help="First seed."),
    fmt: str = typer.Option("nifti", "--format", help="nifti or dicom"),
    preset: str = typer.Option("default", "--preset", help="default, eval (fixed 40-case set), hard, measure (100 cases for measurement validation), random (domain-randomised)"),
) -> None:
    """Generate synthetic CISS/FIESTA phantom cases with exact truth (image, labels.nii.gz, truth.json)."""
    from rich.progress import Progress

    from nvc_mri.phantom import generate
    from nvc_mri.phantom.presets import preset_cases
    from nvc_mri.phantom.write import write_case

    if fmt not in ("nifti", "dicom"):
        raise InputError(fmt, "format must be nifti or dicom")
    if n < 1 or seed < 0:
        raise InputError(f"--n {n} --seed {seed}", "the number of cases must be 1 or more and the first seed 0 or more")
    try:
        cases = preset_cases(preset, n if preset not in ("eval", "hard", "measure") or n > 1 else None, seed)
    except ValueError as exc:
        raise InputError(f"--preset {preset}", str(exc)) from None
    with Progress(console=err_console) as progress:
        task = progress.add_task("phantom cases", total=len(cases))
        for case_seed, options in cases:
            write_case(generate(case_seed, **options), outdir / f"case_{case_seed:07d}", fmt)
            progress.advance(task)
    console.print(f"wrote {len(cases)} case(s) to {outdir}")


def training_recipe(config: Path) -> dict:
    """The recipe at ``config``: a YAML file (relative to the working folder), or else a shipped recipe of that
    name (``configs/train.yaml`` outside a checkout is the shipped ``train.yaml``)."""
    import yaml

    from nvc_mri.config import load_config, shipped_config_names

    if config.is_file():
        source = config.resolve()  # a bare file name is the user's file, not a shipped one
    elif config.name in shipped_config_names():
        source = config.name
    else:
        raise InputError(config, f"training recipe not found (shipped ones: {', '.join(sorted(n for n in shipped_config_names() if n.startswith('train')))})")
    try:
        recipe = load_config(source)
    except yaml.YAMLError as exc:
        raise InputError(config, f"not readable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(recipe, dict):
        raise InputError(config, "a training recipe is a YAML mapping of settings")
    return recipe


@app.command()
@friendly_errors
def train(
    config: Path = typer.Option(Path("configs/train.yaml"), "--config", "-c", help="Training config (YAML)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run's last checkpoint."),
) -> None:
    """Train the coarse and fine U-Nets on phantoms generated on the fly (see configs/train.yaml)."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from nvc_mri.segment.train import TrainConfig
    from nvc_mri.segment.train import train as run_training

    from pydantic import ValidationError

    from nvc_mri.errors import validation_problems

    try:
        settings = TrainConfig(**training_recipe(config))
    except ValidationError as exc:
        raise InputError(config, f"not a valid training recipe: {validation_problems(exc)}") from None
    with Progress(TextColumn("[bold]training"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("train", total=settings.steps, status="waiting for phantoms")

        def report(step: int, stats: dict) -> None:
            status = f"loss {stats['loss']:.3f}  cases {stats['cases']}"
            if "val_dice" in stats:
                status += "  val Dice " + " ".join(f"{k[:6]} {v:.2f}" for k, v in stats["val_dice"].items())
                console.log(status)
            bar.update(task, completed=step, status=status)

        weights = run_training(settings, resume=resume, progress=report)
    console.print(styled(f"Weights written to {weights}", "bold"))


@app.command()
@friendly_errors
def segment(
    input: Path = typer.Argument(..., help="DICOM file, folder or zip; NIfTI, NRRD, MetaImage or MGH file."),
    output: Path = typer.Option(..., "--output", "-o", help="Label map to write (.nii.gz), on the input's grid."),
    series: str | None = typer.Option(None, "--series", help="SeriesInstanceUID or series number when a folder holds several; 3#2 for one part of series 3 (see info)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    weights: Path | None = typer.Option(None, "--weights", help="Other weights (safetensors) than the shipped ones."),
    force: bool = typer.Option(False, "--force", help="Segment a series that is not heavily T2-weighted (unreliable)."),
) -> None:
    """Segment brainstem, CN VII, CN VIII, arteries and lesions with the shipped U-Net."""
    from nvc_mri.analysis import FORCED_WARNING, csf_contrast_warnings, refuse_wrong_sequence
    from nvc_mri.atomic import atomic_save_nifti
    from nvc_mri.io import load_volume
    from nvc_mri.segment.inference import configure_threads, run_segmentation, select_device
    from nvc_mri.segment.model import load_networks

    configure_threads()
    select_device(device)  # a bad --device or output is named before a long load
    if not output.name.endswith((".nii.gz", ".nii")):
        raise InputError(output, "the label map is written as NIfTI: name it .nii.gz or .nii")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(output, f"cannot create its folder ({exc.strerror})") from None
    volume = load_volume(input, series=series)
    problem = refuse_wrong_sequence(volume, force)
    result = run_segmentation(volume, networks=load_networks(weights), device=device)
    atomic_save_nifti(result.labels.to_nifti(dtype="uint8"), output)
    warnings = ([f"{FORCED_WARNING}: {problem}"] if problem else []) + volume.meta.warnings
    for warning in warnings + csf_contrast_warnings(volume, result.labels.array):
        console.print(styled("warning:", "yellow", f" {warning}"), highlight=False)
    where = "whole volume (coarse pass not trusted: " + str(result.coarse_reason) + ")" if result.used_fallback else "brainstem and both CPAs"
    console.print(f"Labels written to {output} (fine pass over {where}, {result.timings_s['total']:.1f} s)")


@app.command()
@friendly_errors
def evaluate(
    pred_dir: Path = typer.Argument(..., help="Predicted label maps: <case>/labels.nii.gz or <case>.nii.gz."),
    truth_dir: Path = typer.Argument(..., help="Reference label maps, same layout (a phantom folder works)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Folder for metrics.csv and metrics.json (default: PRED_DIR)."),
) -> None:
    """Dice, 95% Hausdorff distance (mm) and surface Dice at 0.5 mm per structure, per case and summary."""
    from nvc_mri.segment.evaluate import evaluate_folders

    result = evaluate_folders(pred_dir, truth_dir, output or pred_dir)
    table = Table("structure", "cases", "Dice mean", "Dice median", "HD95 mm mean", "surface Dice 0.5 mm", "false-positive cases")
    for name, row in result["summary"].items():
        table.add_row(name, str(row["cases"]), f"{row['dice_mean']:.3f}", f"{row['dice_median']:.3f}", f"{row['hd95_mm_mean']:.2f}",
                      f"{row['surface_dice_0.5mm_mean']:.3f}", str(row["false_positive_cases"]))
    console.print(table)
    if result["missing_predictions"]:
        missing = result["missing_predictions"]
        err_console.print(styled("warning:", "yellow", f" {len(missing)} reference case(s) have no prediction and are not in the summary: "
                          f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"), highlight=False, soft_wrap=True)
    console.print(f"metrics.csv and metrics.json written to {output or pred_dir}")


def print_summary(report, truth=None) -> None:
    """Findings per side as a table (with the phantom's truth beside them when given), then the impressions."""
    table = Table("side", "contact", "severity", "gap mm", "segment", "vessel", "indent. mm", title="Facial nerve (RAS+ mm)")

    def cells(contact, severity, gap, segment, vessel, indentation) -> list[str]:
        return ["-" if contact is None else ("yes" if contact else "no"), str(severity), "-" if gap is None else f"{gap:.2f}",
                str(segment or "-").replace("_", " "), str(vessel or "-"), "-" if indentation is None else f"{indentation:.2f}"]

    for side in ("right", "left"):
        s = report.sides[side]
        n = s.nvc
        table.add_row(side, *cells(n.contact, n.severity or "unknown", n.min_gap_mm, n.segment, n.vessel, n.indentation_mm))
        if truth:
            t = truth.sides[side]
            table.add_row("  truth", *cells(t.contact, t.severity, t.min_gap_mm, t.segment, t.vessel, t.indentation_mm), style="dim")
    console.print(table)
    for side in ("right", "left"):
        console.print(styled(f"{side.capitalize()}:", "bold", f" {report.sides[side].impression}"), highlight=False)
    for i, lesion in enumerate(report.lesions, 1):
        console.print(styled(f"Lesion {i}:", "bold", f" {lesion.impression}"), highlight=False)
    for warning in report.warnings:
        console.print(styled("warning:", "yellow", f" {warning}"), highlight=False)


def _analyze_into(source, outdir: Path, *, series=None, device="auto", weights=None, fmt=None, force=False, config=None):
    """Run one analysis and write its outputs; on failure leave only error.json in OUTDIR and re-raise."""
    from nvc_mri.analysis import run_analysis
    from nvc_mri.config import use_config
    from nvc_mri.report import write_error, write_outputs
    from nvc_mri.report.write import check_output_folder, parse_formats
    from nvc_mri.segment.model import load_networks

    check_output_folder(outdir)
    try:
        with use_config(config):
            analysis = run_analysis(source, series=series, device=device, networks=load_networks(weights), force=force)
            formats = parse_formats(fmt, bool(analysis.volume.headers))
            write_outputs(analysis, outdir, formats)
        return analysis
    except Exception as exc:
        write_error(outdir, source, exc)
        raise


@app.command()
@friendly_errors
def analyze(
    input: Path = typer.Argument(..., help="DICOM file, folder (or its DICOMDIR) or zip; NIfTI, NRRD, MetaImage or MGH file."),
    outdir: Path = typer.Option(..., "--output", "-o", help="Output folder (replaced as a whole; must be new, empty or an earlier output)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Folder of YAML files (or one YAML file keyed by file name) overriding configs/."),
    fmt: str | None = typer.Option(None, "--format", help="Comma-separated: json, html, nifti, dicom (default: all the input allows)."),
    series: str | None = typer.Option(None, "--series", help="SeriesInstanceUID or series number when a folder holds several; 3#2 for one part of series 3 (see info)."),
    weights: Path | None = typer.Option(None, "--weights", help="Other weights (safetensors) than the shipped ones."),
    force: bool = typer.Option(False, "--force", help="Analyse a series that is not heavily T2-weighted (every output is marked unreliable)."),
) -> None:
    """Load, segment, measure and report one study: report.json, report.html, labels.nii.gz, and DICOM SEG/SR/key images."""
    analysis = _analyze_into(input, outdir, series=series, device=device, weights=weights, fmt=fmt, force=force, config=config)
    print_summary(analysis.report)
    console.print(f"Outputs in {outdir}: {', '.join(analysis.report.outputs.files)} ({analysis.report.timings_s['total']:.1f} s)")


@app.command()
@friendly_errors
def batch(
    input_root: Path = typer.Argument(..., help="Folder with image files (NIfTI, NRRD, MetaImage, MGH), zip files and DICOM studies (nested folders)."),
    output_root: Path = typer.Option(..., "--output", "-o", help="One folder per study, plus summary.csv/.json and failures.csv."),
    workers: int = typer.Option(1, "--workers", "-w", help="Local worker processes (torch threads are divided among them)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Dask distributed scheduler address (tcp://host:8786)."),
    resume: bool = typer.Option(False, "--resume", help="Skip studies whose outputs are complete and current."),
    timeout: float | None = typer.Option(None, "--timeout-per-study", help="Seconds after which a study is stopped and recorded as failed."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda (for each worker)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config overrides, as for analyze."),
    force: bool = typer.Option(False, "--force", help="Also analyse series that are not heavily T2-weighted (marked unreliable)."),
) -> None:
    """Analyse every study under INPUT_ROOT: resumable, one failure never stops the rest, summary table."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from nvc_mri.batch import run_batch

    with Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("batch", total=None, rate="")
        processed = [0]

        def on_start(total: int, skipped: int) -> None:
            bar.update(task, total=total, completed=skipped)
            if skipped:
                console.log(f"{skipped} of {total} studies already done (resume)")

        def on_row(row: dict) -> None:
            processed[0] += 1
            bar.advance(task)
            bar.update(task, rate=f"{3600 * processed[0] / max(bar.tasks[0].elapsed or 0.0, 1e-6):.0f} studies/h")
            if row["status"] == "failed":
                console.log(styled("failed", "red", f" {row['study']}: {row['reason']}"), highlight=False)
            else:
                sides = "  ".join(f"{s[0].upper()} {row[s + '_severity'] or 'unknown'}" + (f" {row[s + '_vessel']}" if row[s + "_vessel"] else "")
                                  for s in ("right", "left"))
                console.log(f"done {row['study']} ({row['seconds']:.0f} s): {sides}; lesions {row['lesions']}", highlight=False)

        summary = run_batch(input_root, output_root, workers=workers, scheduler=scheduler, resume=resume, timeout_s=timeout,
                            device=device, config=config, force=force, on_start=on_start, on_row=on_row)
    counts = summary.counts
    console.print(f"{counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped; "
                  f"summary in {output_root / 'summary.csv'}" + (f", failures in {output_root / 'failures.csv'}" if counts["failed"] else ""))
    if counts["failed"]:
        raise typer.Exit(code=3)


@app.command()
@friendly_errors
def serve(
    destination: str = typer.Option(..., "--destination", envvar="NVC_DESTINATION", help="Where results go: AE@HOST:PORT (usually the PACS)."),
    ae_title: str = typer.Option("NVC", "--ae-title", envvar="NVC_AE_TITLE", help="This node's AE title."),
    port: int = typer.Option(11112, "--port", envvar="NVC_PORT", help="Port to listen on."),
    allow: list[str] = typer.Option([], "--allow", envvar="NVC_ALLOW", help="Calling AE title allowed to send (repeat; env: space-separated); default: any."),
    spool: Path = typer.Option(Path("nvc-spool"), "--spool", envvar="NVC_SPOOL", help="Persistent spool folder (mount a volume here)."),
    quiet_period: float | None = typer.Option(None, "--quiet-period", envvar="NVC_QUIET_PERIOD", help="Seconds without new instances before a study counts as complete."),
    device: str | None = typer.Option(None, "--device", envvar="NVC_DEVICE", help="auto, cpu or cuda for the analysis."),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="Certificate (PEM) to serve DICOM over TLS."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="Private key (PEM) of --tls-cert."),
    tls_ca: Path | None = typer.Option(None, "--tls-ca", help="CA bundle: require and verify client certificates."),
) -> None:
    """Run a DICOM node: receive MR studies, analyse each once complete, send SEG, SR and key images to the destination."""
    import logging
    import signal
    import ssl
    import threading

    from nvc_mri.pacs import Node

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    context = None
    if tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tls_ca) if tls_ca else None)
        context.load_cert_chain(str(tls_cert), str(tls_key) if tls_key else None)
        context.verify_mode = ssl.CERT_REQUIRED if tls_ca else ssl.CERT_NONE
    overrides = {k: v for k, v in (("quiet_period_s", quiet_period), ("device", device)) if v is not None}
    node = Node(spool, destination, ae_title=ae_title, port=port, allow=allow, ssl_context=context, config=overrides)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    node.start()
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()


@app.command()
def health(spool: Path = typer.Option(Path("nvc-spool"), "--spool", envvar="NVC_SPOOL"),
           max_age: float = typer.Option(60.0, "--max-age")) -> None:
    """Exit 0 when the node serving SPOOL is alive (its heartbeat is recent): for Docker HEALTHCHECK."""
    import time

    try:
        age = time.time() - float((spool / "heartbeat").read_text().strip())
    except (OSError, ValueError):
        raise typer.Exit(code=1) from None
    raise typer.Exit(code=0 if age <= max_age else 1)


@app.command()
@friendly_errors
def demo(outdir: Path = typer.Option(Path("nvc-demo"), "--outdir", "-o", help="Where the demo case and its report are written."),
         device: str = typer.Option("auto", "--device", help="auto, cpu or cuda.")) -> None:
    """Analyse an embedded default phantom case (a CISS-like DICOM series) end to end and compare with its truth."""
    from nvc_mri.phantom import ConflictSpec, generate
    from nvc_mri.phantom.write import write_case

    case = generate(7, contrast="ciss", spacing_mm=(0.5, 0.5, 0.7), slab_mm=50,
                    left=ConflictSpec(kind="deformity", segment="attached_segment", vessel="AICA"),
                    right=ConflictSpec(kind="none"), lesion_probability=0.0)
    folder = write_case(case, outdir / "phantom_case", "dicom")
    console.print(styled(f"Phantom case written to {folder}", "bold", " (truth in truth.json, RAS+ mm)"))
    analysis = _analyze_into(folder / "dicom", outdir / "report", device=device)
    print_summary(analysis.report, truth=case.truth)
    console.print(f"Report: {outdir / 'report' / 'report.html'} and report.json, labels.nii.gz, dicom/ "
                  f"({analysis.report.timings_s['total']:.1f} s)")


if __name__ == "__main__":  # pragma: no cover
    app()
