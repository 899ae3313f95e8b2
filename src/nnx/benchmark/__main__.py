"""``python -m nnx.benchmark``: the same as ``nnx bench``."""

from .command import main

raise SystemExit(main())
