"""The ``nnx`` command: the chapter's demos and the benchmarks.

    nnx demo digits                         # the main job: MLP on handwritten digits
    nnx demo xor --backend torch --out figs
    nnx demo all --quick                    # every demo, small and fast
    nnx demo list                           # what there is
    nnx bench ...                           # delegates to nnx.benchmark.main(argv)

Exit status: 0 on success, 1 when a demo's dependency or the benchmark module is
missing, 2 for usage errors (an unknown demo or backend).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from .demos import DEMOS

    listing = "\n".join(f"  {name:<12} {line}" for name, line in DEMOS.items())
    parser = argparse.ArgumentParser(
        prog="nnx", description="nnx: neural networks from first principles, on any "
        "Array API library.")
    sub = parser.add_subparsers(dest="command", metavar="{demo,bench}")
    sub.required = True
    demo = sub.add_parser(
        "demo", help="run one of the chapter's demos (prints results, writes a PNG)",
        description="Run a demo: it prints its result and writes <out>/<name>.png.",
        epilog=f"demos:\n{listing}\n  {'all':<12} every demo in turn\n"
               f"  {'list':<12} list the demos",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("name", help="the demo to run (see below)")
    demo.add_argument("--backend", default=None,
                      help="numpy, cupy, torch, jax or array_api_strict (default: the active "
                           "backend, NNX_BACKEND or numpy)")
    demo.add_argument("--out", default="nnx-demos",
                      help="folder for the PNGs (default: %(default)s)")
    demo.add_argument("--quick", action="store_true",
                      help="a small, fast run (for tests and smoke checks)")
    demo.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    demo.add_argument("--distributed", action="store_true",
                      help="data-parallel training over MPI: run under `mpiexec -n N` "
                           "(needs the mpi extra: pip install 'nnx-fundamentals[mpi]'); "
                           "rank 0 alone prints and writes to --out")
    sub.add_parser("bench", help="benchmarks; `nnx bench --help` for their options",
                   add_help=False)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from .backend import resolve_backend
    from .demos import DEMOS, MissingDependency, run

    if args.name == "list":
        for name, line in DEMOS.items():
            print(f"{name:<12} {line}")
        return 0
    names = list(DEMOS) if args.name == "all" else [args.name]
    if names[0] not in DEMOS:
        print(f"nnx demo: unknown demo {args.name!r}. The demos are:", file=sys.stderr)
        for name, line in DEMOS.items():
            print(f"  {name:<12} {line}", file=sys.stderr)
        return 2
    try:
        backend = resolve_backend(args.backend)
        if args.distributed and backend.name == "cupy":  # one GPU per rank on each node
            from .distributed import local_rank

            backend = resolve_backend("cupy", device=local_rank())
    except ValueError as exc:
        print(f"nnx demo: {exc}", file=sys.stderr)
        return 2
    if args.distributed:
        return _demo_distributed(args, names, backend, run, MissingDependency)
    for name in names:
        print(f"== nnx demo {name} (backend: {backend.name}) ==")
        start = time.perf_counter()
        try:
            run(name, out=args.out, quick=args.quick, backend=backend, seed=args.seed)
        except MissingDependency as exc:
            print(f"nnx demo {name}: {exc}", file=sys.stderr)
            return 1
        print(f"({name} took {time.perf_counter() - start:.1f} s)\n")
    return 0


def _demo_distributed(args: argparse.Namespace, names: list[str], backend: object,
                      run: object, missing: type) -> int:
    """The demos with every ``fit`` data-parallel (nnx.distributed). Ranks other than 0
    run the same code silently, writing into a throwaway folder instead of ``--out``."""
    import contextlib
    import os
    import tempfile

    from . import distributed

    with contextlib.ExitStack() as stack:
        try:
            dp = stack.enter_context(distributed.data_parallel())
        except ImportError as exc:
            print(f"nnx demo: --distributed: {exc}", file=sys.stderr)
            return 1
        out = args.out
        if not dp.is_root:
            out = stack.enter_context(tempfile.TemporaryDirectory(prefix="nnx-rank"))
            stack.enter_context(contextlib.redirect_stdout(open(os.devnull, "w")))
        for name in names:
            print(f"== nnx demo {name} (backend: {backend.name}, data-parallel over "
                  f"{dp.size} MPI rank{'s' if dp.size > 1 else ''}) ==")
            start = time.perf_counter()
            try:
                run(name, out=out, quick=args.quick, backend=backend, seed=args.seed)
            except missing as exc:
                print(f"nnx demo {name}: {exc}", file=sys.stderr)
                return 1
            print(f"({name} took {time.perf_counter() - start:.1f} s)\n")
    return 0


def _bench(argv: list[str]) -> int:
    try:
        from . import benchmark
    except ImportError as exc:
        print(f"nnx bench: the benchmark module nnx.benchmark is not available ({exc}); "
              "it ships with nnx's source tree (bench/) — reinstall nnx from a full "
              "checkout", file=sys.stderr)
        return 1
    result = benchmark.main(argv)
    return int(result or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nnx`` command with ``argv`` (``sys.argv[1:]`` when None); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":  # everything after `bench` is the benchmark's own
        return _bench(argv[1:])
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:       # --help (0) or a usage error (2)
        return int(exc.code or 0)
    return _demo(args)


if __name__ == "__main__":  # python -m nnx.cli
    sys.exit(main())
