"""The floor: a training step's matrix products alone, and a Dense layer's."""

from __future__ import annotations

from conftest import SIZES, WIDE
from nnx.benchmark import accounting as acc
from nnx.benchmark import cases


def test_floor_wide_mlp(backend, run):
    run(cases.floor(backend, WIDE), acc.floor_flops(WIDE.sizes, WIDE.batch),
        f"wide MLP {WIDE.label}")


def test_floor_dense(backend, run):
    n_in, n_out, batch = SIZES["dense"]
    run(cases.dense_floor(backend, n_in, n_out, batch, backward=True),
        acc.dense_flops(n_in, n_out, batch, backward=True), "dense fwd+bwd")
