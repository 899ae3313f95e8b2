"""Full training steps (forward, loss, backward, SGD): the wide MLP and the sweeps."""

from __future__ import annotations

import pytest

from conftest import SIZES, WIDE
from nnx.benchmark import accounting as acc
from nnx.benchmark import cases

SWEEP = [cases.Network((WIDE.sizes[0], w, w, WIDE.sizes[-1]), WIDE.batch)
         for w in SIZES["widths"]]
SWEEP += [cases.Network((WIDE.sizes[0], SIZES["sweep_width"], SIZES["sweep_width"],
                         WIDE.sizes[-1]), n) for n in SIZES["batches"]]


def test_step_wide_mlp(backend, run):
    run(cases.training_step(backend, WIDE), acc.step_flops(WIDE.sizes, WIDE.batch),
        f"wide MLP {WIDE.label}")


def test_step_wide_mlp_torch_reference(backend, run):
    run(cases.torch_step(backend, WIDE), acc.step_flops(WIDE.sizes, WIDE.batch),
        f"wide MLP {WIDE.label}")


@pytest.mark.parametrize("net", SWEEP, ids=[n.label.replace(" ", "") for n in SWEEP])
def test_step_sweep(backend, run, net):
    run(cases.training_step(backend, net), acc.step_flops(net.sizes, net.batch),
        f"sweep {net.label}")


@pytest.mark.parametrize("net", SWEEP, ids=[n.label.replace(" ", "") for n in SWEEP])
def test_floor_sweep(backend, run, net):
    run(cases.floor(backend, net), acc.floor_flops(net.sizes, net.batch), f"sweep {net.label}")


@pytest.mark.parametrize("net", SWEEP, ids=[n.label.replace(" ", "") for n in SWEEP])
def test_step_sweep_torch_reference(backend, run, net):
    run(cases.torch_step(backend, net), acc.step_flops(net.sizes, net.batch),
        f"sweep {net.label}")
