"""Replace one marked section of benchmarks/RESULTS.md (scripts own their sections)."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def write_section(key: str, markdown: str) -> None:
    """Put ``markdown`` between ``<!-- key:start -->`` and ``<!-- key:end -->``, appending the markers if absent."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    text = RESULTS.read_text(encoding="utf-8")
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text, encoding="utf-8")


def target_table(values: dict[str, float], targets: dict[str, tuple[str, float]]) -> str:
    """A markdown table of measured values against ``{name: ("<=" or ">=", goal)}``."""
    rows = ["| measure | value | target |", "|---|---|---|"]
    for name, (op, goal) in targets.items():
        value = values[name]
        ok = value <= goal if op == "<=" else value >= goal
        rows.append(f"| {name} | {value:.3f} | {op} {goal}: {'met' if ok else '**not met**'} |")
    return "\n".join(rows)
