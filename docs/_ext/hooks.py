"""MkDocs hook: serve the committed benchmark figures from where they live.

``bench/results/*.png`` belong to the benchmarks (``nnx bench`` writes them there and
bench/README.md shows them); the site publishes them as ``bench/results/<name>.png``
instead of keeping a second copy under docs/ that could drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ("cpu.png", "gpu.png")


def on_files(files: Files, *, config: Any) -> Files:
    for name in FIGURES:
        path = ROOT / "bench" / "results" / name
        files.append(File.generated(config, f"bench/results/{name}", abs_src_path=str(path)))
    return files
