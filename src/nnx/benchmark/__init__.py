"""``nnx bench``: nnx's training step against its matrix-product floor and PyTorch.

    nnx bench --quick                     # or: python -m nnx.benchmark --quick
    result = nnx.benchmark.run(["numpy"], quick=True)    # the same suite, as a dict

* :mod:`.suite` — what is timed (wide MLP, Dense layer, sweeps, XOR, memory), the rows
  with their ratios, and the targets per backend;
* :mod:`.cases` — the units of work, each built on one backend: the floor, nnx's step,
  PyTorch's step, the hand-written NumPy step, peak memory, kernel launches;
* :mod:`.timing` — interleaved rounds of calibrated samples, medians, paired ratios;
* :mod:`.accounting` — the FLOPs of a step and the analytic minimum of its memory;
* :mod:`.report` — the tables, the JSON record and the plot;
* :mod:`.command` — the command line.

A tool on top of the core: it imports nnx's modules, and they never import it.
"""

from .command import main
from .suite import DEFAULTS, QUICK, TARGETS, XOR, run

__all__ = ["main", "run", "TARGETS", "DEFAULTS", "QUICK", "XOR"]
