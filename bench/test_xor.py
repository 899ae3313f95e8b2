"""The XOR network (2-4-1, tanh, batch 4): a step where per-call overhead dominates."""

from __future__ import annotations

from nnx.benchmark import XOR, cases
from nnx.benchmark import accounting as acc


def test_step_xor(backend, run):
    run(cases.training_step(backend, XOR), acc.step_flops(XOR.sizes, XOR.batch), "XOR")


def test_step_xor_torch_reference(backend, run):
    run(cases.torch_step(backend, XOR), acc.step_flops(XOR.sizes, XOR.batch), "XOR")


def test_floor_xor(backend, run):
    run(cases.floor(backend, XOR), acc.floor_flops(XOR.sizes, XOR.batch), "XOR")
