"""``report.html``: one self-contained page (inline CSS, images as data URIs, no network access)."""

from __future__ import annotations

import base64
from html import escape

from nvc_mri.report.key_images import KeyImage
from nvc_mri.report.schema import Report

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1b1b1b;max-width:1100px}
h1{font-size:1.5em;margin-bottom:0}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
.sub{color:#555;margin-top:4px}.banner{background:#b00020;color:#fff;padding:12px 16px;font-weight:bold;font-size:1.1em}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:8px 12px;margin:6px 0}
.impression{font-size:1.08em;margin:6px 0}.impression b{display:inline-block;min-width:4em}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f2f2f2}.num{text-align:right;font-variant-numeric:tabular-nums}
.images{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0;width:420px}figure img{width:420px;display:block;background:#000}
figcaption{font-size:.9em;color:#333;padding-top:4px}.prov td{font-size:.9em}.disclaimer{color:#666;font-size:.9em;margin-top:2em}
"""

# Lets a headless browser (and a curious reader) confirm that every image decoded.
CHECK_IMAGES = """
window.addEventListener('load',function(){var im=document.images,ok=0;for(var i=0;i<im.length;i++){
if(im[i].complete&&im[i].naturalWidth>0){ok++;}}document.body.setAttribute('data-images-loaded',ok+'/'+im.length);});
"""

NVC_ROWS = [("contact", "Vessel contact"), ("in_root_exit_zone", "Within root exit zone (NVC)"), ("severity", "Severity"),
            ("min_gap_mm", "Smallest gap (mm)"), ("segment", "Where on the nerve"),
            ("distance_from_root_exit_mm", "Distance from root exit point (mm)"), ("vessel", "Offending vessel"),
            ("vessel_confidence", "Vessel confidence"), ("indentation_mm", "Indentation (mm)"),
            ("displacement_mm", "Displacement (mm)"), ("contact_point_ras_mm", "Contact point, RAS+ mm")]
LESION_ROWS = [("side", "Side"), ("type_guess", "Type (guess)"), ("type_basis", "Type guessed from"),
               ("max_diameter_mm", "Maximal diameter (mm)"), ("volume_mm3", "Volume (mm3)"), ("koos_grade", "Koos grade"),
               ("intracanalicular", "Intracanalicular part"),
               ("cpa_extension", "CPA extension"), ("touches_facial_nerve", "Touches facial nerve"),
               ("brainstem_compression_mm", "Brainstem compression (mm)"), ("centroid_ras_mm", "Centroid, RAS+ mm")]


def _value(v) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, list):
        return "(" + ", ".join(f"{x:.1f}" for x in v) + ")"
    return escape(str(v).replace("_", " "))


def _findings_table(report: Report) -> str:
    head = "<tr><th></th><th>Right</th><th>Left</th></tr>"
    sides = report.sides
    rows = [f"<tr><td>Status</td><td>{_value(sides['right'].status)}</td><td>{_value(sides['left'].status)}</td></tr>"]
    for key, label in NVC_ROWS:
        cells = "".join(f"<td class='num'>{_value(getattr(sides[s].nvc, key))}</td>" for s in ("right", "left"))
        rows.append(f"<tr><td>{label}</td>{cells}</tr>")
    cn8 = "".join(f"<td>{_value(sides[s].vestibulocochlear.severity)}"
                  f"{'' if sides[s].vestibulocochlear.min_gap_mm is None else f' (gap {sides[s].vestibulocochlear.min_gap_mm:.2f} mm)'}</td>"
                  for s in ("right", "left"))
    rows.append(f"<tr><td>CN VIII relation</td>{cn8}</tr>")
    rez = "".join(f"<td class='num'>{_value(sides[s].facial_nerve.root_exit_zone_length_mm)}</td>" for s in ("right", "left"))
    rows.append(f"<tr><td>Root exit zone length (mm)</td>{rez}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _lesion_table(report: Report) -> str:
    if not report.lesions:
        return "<p>No lesion in the cerebellopontine angles or internal auditory canals.</p>"
    head = "<tr><th></th>" + "".join(f"<th>Lesion {i}</th>" for i in range(1, len(report.lesions) + 1)) + "</tr>"
    rows = ["<tr><td>" + label + "</td>" + "".join(f"<td class='num'>{_value(getattr(l, key))}</td>" for l in report.lesions) + "</tr>"
            for key, label in LESION_ROWS]
    return f"<table>{head}{''.join(rows)}</table>"


def _figure(image: KeyImage) -> str:
    data = base64.b64encode(image.png).decode("ascii")
    return (f"<figure><img alt='{escape(image.title)}' src='data:image/png;base64,{data}'>"
            f"<figcaption><b>{escape(image.title)}.</b> {escape(image.caption)}</figcaption></figure>")


def report_html(report: Report, images: list[KeyImage]) -> str:
    """The HTML page of a report: banner for forced analyses, impressions, tables, key images, warnings, provenance."""
    inp, sw = report.input, report.software
    banner = (f"<div class='banner'>{escape(report.warnings[0])}</div>" if report.forced else "")
    impressions = "".join(f"<p class='impression'><b>{s.capitalize()}:</b> {escape(report.sides[s].impression)}</p>"
                          for s in ("right", "left"))
    impressions += "".join(f"<p class='impression'><b>Lesion {i}:</b> {escape(l.impression)}</p>" for i, l in enumerate(report.lesions, 1))
    warnings = "".join(f"<div class='warn'>{escape(w)}</div>" for w in report.warnings) or "<p>None.</p>"
    source = (inp.series_description or inp.path or "image from memory") + (f" ({inp.series_part})" if inp.series_part else "")
    provenance = [("Input", source), ("Format", inp.format), ("Series UID", inp.series_instance_uid),
                  ("Grid", f"{' x '.join(map(str, inp.shape))} voxels, {' x '.join(f'{s:.3g}' for s in inp.spacing_mm)} mm, {inp.orientation}"),
                  ("Sequence", f"{inp.sequence} (confidence {inp.sequence_confidence:.2f}"
                               + (f", from the {inp.sequence_basis.replace('-', ' ')})" if inp.sequence_basis else ")")),
                  ("Fine segmentation over", report.segmentation.fine_pass_region.replace("_", " ")),
                  ("Software", f"{sw.name} {sw.version}"), ("Model", f"{sw.model_file}, sha256 {sw.model_sha256[:16]}..."),
                  ("Created (UTC)", report.created_utc), ("Coordinates", report.coordinate_system),
                  ("Timings (s)", ", ".join(f"{k} {v:.1f}" for k, v in report.timings_s.items()))]
    prov = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v)) if v is not None else '&ndash;'}</td></tr>" for k, v in provenance)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nvc-mri report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>{banner}
<h1>Neurovascular conflict at the facial nerve: MRI report</h1>
<p class="sub">Schema {escape(report.schema_version)}; positions in {escape(report.coordinate_system)}.</p>
<h2>Impression</h2>{impressions}
<h2>Facial nerve (CN VII) by side</h2>{_findings_table(report)}
<h2>Lesions</h2>{_lesion_table(report)}
<h2>Key images</h2><div class="images">{''.join(_figure(i) for i in images) or '<p>No key image (no nerve traced).</p>'}</div>
<h2>Warnings</h2>{warnings}
<h2>Provenance</h2><table class="prov">{prov}</table>
<p class="disclaimer">{escape(report.disclaimer)}</p>
<script>{CHECK_IMAGES}</script>
</body></html>
"""
