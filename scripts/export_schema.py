"""Rewrite nvc_mri/report/report.schema.json from the pydantic Report model (run after changing the model).

tests/test_report.py fails when the shipped file and the model disagree.
"""

import json

from nvc_mri.report.schema import json_schema, schema_path

path = schema_path()
path.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
print(f"wrote {path}")
