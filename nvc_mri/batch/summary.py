"""The batch summary: ``summary.csv``/``summary.json`` (one row per study) and ``failures.csv``,
rewritten atomically whenever a study finishes, so a batch killed at any moment leaves valid files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from nvc_mri.atomic import atomic_write_text
from nvc_mri.errors import error_line

SIDE_FIELDS = ("contact", "severity", "min_gap_mm", "segment", "vessel", "indentation_mm")
COLUMNS = (["study", "kind", "input", "status", "seconds"]
           + [f"{side}_{f}" for side in ("right", "left") for f in SIDE_FIELDS]
           + ["lesions", "lesion_summary", "forced", "warnings", "reason", "output"])
FAILURE_COLUMNS = ["study", "kind", "input", "reason", "attempts"]


def report_row(study, report, seconds: float) -> dict:
    """Key findings of one finished study (positions are not listed; see its report.json)."""
    row = {"study": study.name, "kind": study.kind, "input": study.source, "status": "done", "seconds": round(seconds, 1),
           "lesions": len(report.lesions), "forced": report.forced, "warnings": len(report.warnings), "reason": "",
           "output": study.name,
           "lesion_summary": "; ".join(f"{l.side} {l.type_guess} {l.max_diameter_mm:.1f} mm"
                                       + (f" Koos {l.koos_grade}" if l.koos_grade else "") for l in report.lesions)}
    for side in ("right", "left"):
        nvc = report.sides[side].nvc
        for f in SIDE_FIELDS:
            row[f"{side}_{f}"] = getattr(nvc, f)
    return row


def failure_row(study, error: BaseException | str, seconds: float, attempts: int = 1) -> dict:
    row = {c: "" for c in COLUMNS}
    row.update(study=study.name, kind=study.kind, input=study.source, status="failed", seconds=round(seconds, 1),
               reason=error_line(error), output=study.name, attempts=attempts)
    return row


def _csv(rows: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buffer.getvalue()


class Summary:
    """Rows by study name, written out after every change."""

    def __init__(self, output_root: Path):
        self.root = Path(output_root)
        self.rows: dict[str, dict] = {}

    def record(self, row: dict) -> None:
        self.rows[row["study"]] = row
        self.write()

    def write(self) -> None:
        rows = [self.rows[k] for k in sorted(self.rows)]
        failures = [r for r in rows if r["status"] == "failed"]
        atomic_write_text(self.root / "summary.csv", _csv(rows, COLUMNS))
        atomic_write_text(self.root / "summary.json", json.dumps({"coordinate_system": "RAS+ mm (see each report.json)",
                                                                  "studies": rows}, indent=2, default=str))
        atomic_write_text(self.root / "failures.csv", _csv(failures, FAILURE_COLUMNS))

    @property
    def counts(self) -> dict[str, int]:
        out = {"done": 0, "failed": 0, "skipped": 0}
        for row in self.rows.values():
            out[row["status"]] = out.get(row["status"], 0) + 1
        return out
