"""One Dense layer: forward, and forward + backward (with dX), beside nn.Linear."""

from __future__ import annotations

import pytest

from conftest import SIZES
from nnx.benchmark import accounting as acc
from nnx.benchmark import cases


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "fwd+bwd"])
def test_dense(backend, run, backward):
    n_in, n_out, batch = SIZES["dense"]
    run(cases.dense_pass(backend, n_in, n_out, batch, backward=backward),
        acc.dense_flops(n_in, n_out, batch, backward=backward),
        "dense fwd+bwd" if backward else "dense forward")


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "fwd+bwd"])
def test_dense_torch_reference(backend, run, backward):
    n_in, n_out, batch = SIZES["dense"]
    run(cases.torch_dense(backend, n_in, n_out, batch, backward=backward),
        acc.dense_flops(n_in, n_out, batch, backward=backward),
        "dense fwd+bwd" if backward else "dense forward")
