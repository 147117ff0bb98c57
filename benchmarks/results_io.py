"""Writing a benchmark's results: one JSON file for machines and one Markdown table for people."""

from __future__ import annotations

import json
import os
from typing import Any

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def save(name: str, report: dict[str, Any], markdown: str, directory: str = RESULTS) -> None:
    """Print the Markdown and write ``<directory>/<name>.json`` and ``<name>.md``."""
    print(markdown)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"{name}.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    with open(os.path.join(directory, f"{name}.md"), "w") as handle:
        handle.write(markdown)
