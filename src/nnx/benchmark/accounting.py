"""What a training step must cost: FLOP counts and the analytic memory minimum.

For an MLP with layer widths ``sizes = [n₀, n₁, …, n_L]`` and a batch of B rows, layer l
has P_l = n_{l−1} n_l + n_l parameters (W and b), and P = Σ_l P_l.

* A training step is counted as **6 B P** FLOPs, the usual convention: the forward
  product X Wᵀ (2 B n_{l−1} n_l per layer), and in backward δᵀ X for dW and δ W for dX
  (2 B n_{l−1} n_l each). A forward pass alone is 2 B P.
* The **floor** runs the products a step really needs: every forward product, every dW,
  and dX for all but the first layer (its input is data): 6 B Σ n_{l−1} n_l − 2 B n₀ n₁.
* The **analytic minimum memory** of a step is what must be alive at once: parameters,
  their gradients, the optimizer's state, and the activations cached for backward (one
  (B, n_l) array per layer). The input batch is the caller's and is not counted.
* In **mixed precision** (a compute dtype of c bytes, float32 master weights) the
  minimum adds the low-precision copies a step keeps for backward, see
  :func:`mixed_min_bytes`; its throughput is counted on the products alone,
  :func:`matmul_flops` (6 B Σ n_{l−1} n_l, the biases left out), as tensor cores run them.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["param_count", "step_flops", "forward_flops", "floor_flops", "dense_flops",
           "OPTIMIZER_STATE", "analytic_min_bytes", "matmul_flops", "mixed_min_bytes"]

#: arrays of optimizer state kept per parameter array.
OPTIMIZER_STATE: dict[str, int] = {"sgd": 0, "sgd_momentum": 1, "adam": 2}


def _pairs(sizes: Sequence[int]) -> list[tuple[int, int]]:
    sizes = [int(n) for n in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least two positive widths; got {list(sizes)}")
    return list(zip(sizes, sizes[1:]))


def param_count(sizes: Sequence[int], *, bias: bool = True) -> int:
    """P = Σ_l (n_{l−1} n_l + n_l): the scalars an MLP of ``sizes`` learns."""
    return sum(n_in * n_out + (n_out if bias else 0) for n_in, n_out in _pairs(sizes))


def step_flops(sizes: Sequence[int], batch: int) -> int:
    """6 B P: the FLOPs credited to one training step (forward + backward)."""
    return 6 * batch * param_count(sizes)


def forward_flops(sizes: Sequence[int], batch: int) -> int:
    """2 B P: the FLOPs credited to one forward pass."""
    return 2 * batch * param_count(sizes)


def floor_flops(sizes: Sequence[int], batch: int) -> int:
    """The FLOPs of the floor's products: 3 per layer (X Wᵀ, δᵀ X, δ W), less the first dX."""
    pairs = _pairs(sizes)
    n0, n1 = pairs[0]
    return 6 * batch * sum(a * b for a, b in pairs) - 2 * batch * n0 * n1


def dense_flops(n_in: int, n_out: int, batch: int, *, backward: bool) -> int:
    """A Dense layer: 2 B P forward, 6 B P forward + backward (with dX)."""
    return (6 if backward else 2) * batch * param_count([n_in, n_out])


def analytic_min_bytes(sizes: Sequence[int], batch: int, *, itemsize: int = 4,
                       optimizer: str = "sgd") -> dict[str, int]:
    """The bytes a training step cannot do without, by part, and their ``total``.

    ``params`` + ``grads`` (one of each per parameter), ``state`` (``OPTIMIZER_STATE``
    arrays per parameter: 0 for plain SGD, 2 for Adam) and ``activations`` (B n_l for
    every layer l ≥ 1: what backward reads, kept once).
    """
    if optimizer not in OPTIMIZER_STATE:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZER_STATE)}")
    p = param_count(sizes) * itemsize
    parts = {
        "params": p,
        "grads": p,
        "state": OPTIMIZER_STATE[optimizer] * p,
        "activations": batch * sum(n_out for _, n_out in _pairs(sizes)) * itemsize,
    }
    parts["total"] = sum(parts.values())
    return parts


def matmul_flops(sizes: Sequence[int], batch: int) -> int:
    """6 B Σ_l n_{l−1} n_l: the products of a step (X Wᵀ, δᵀ X and δ W per layer, each
    2 B n_{l−1} n_l FLOPs), the first layer's dX included as in :func:`step_flops`;
    biases and elementwise work not counted. The precision section's TFLOP/s."""
    return 6 * batch * sum(a * b for a, b in _pairs(sizes))


def mixed_min_bytes(sizes: Sequence[int], batch: int, *, compute_itemsize: int = 2,
                    master_itemsize: int = 4, optimizer: str = "sgd") -> dict[str, int]:
    """The bytes a mixed-precision step cannot do without, by part, and their ``total``.

    With P parameters, S optimizer-state arrays per parameter, c = ``compute_itemsize``
    (2 for bfloat16 and float16) and m = ``master_itemsize`` (4, float32):

    * ``params`` m·P, ``grads`` m·P, ``state`` S·m·P — the float32 master copies;
    * ``weight_copies`` c·Σ_l n_{l−1} n_l — each W rounded to the compute dtype, kept from
      forward for backward's δ W (the rounded biases are temporaries: not counted);
    * ``activations`` c·B·(n₀ + n₁ + … + n_{L−1}) + m·B·n_L — what backward reads: the
      input rounded to the compute dtype (the float32 batch itself is the caller's) and
      every hidden activation in the compute dtype, once; the output in float32, which
      the loss reads.

    With ``compute_itemsize == master_itemsize`` there is nothing to round: the weight
    copies and the input's copy vanish and this is :func:`analytic_min_bytes`.
    """
    if optimizer not in OPTIMIZER_STATE:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZER_STATE)}")
    pairs = _pairs(sizes)
    if compute_itemsize == master_itemsize:
        return analytic_min_bytes(sizes, batch, itemsize=master_itemsize, optimizer=optimizer)
    p = param_count(sizes) * master_itemsize
    hidden = sum(n_out for _, n_out in pairs[:-1])
    parts = {
        "params": p,
        "grads": p,
        "state": OPTIMIZER_STATE[optimizer] * p,
        "weight_copies": compute_itemsize * sum(a * b for a, b in pairs),
        "activations": (compute_itemsize * batch * (pairs[0][0] + hidden)
                        + master_itemsize * batch * pairs[-1][1]),
    }
    parts["total"] = sum(parts.values())
    return parts
