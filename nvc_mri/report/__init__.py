"""The structured report: validated JSON (``report.json``, schema in ``report.schema.json``), a
self-contained HTML page with key images, the label map, and DICOM SEG/SR/key images for DICOM input.
Coordinates: RAS+ world mm."""

from nvc_mri.report.schema import SCHEMA_VERSION, Report
from nvc_mri.report.write import write_error, write_outputs

__all__ = ["Report", "SCHEMA_VERSION", "write_outputs", "write_error"]
