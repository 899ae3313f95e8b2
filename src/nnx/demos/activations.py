"""10.4: each activation f(z) beside its derivative f'(z), computed by nnx's layers.

f' comes from each layer's backward pass (dL/dz for dL/da = 1), and is checked against
central finite differences of the forward pass; softmax, a normalizer rather than an
elementwise function, is shown on a vector of scores.
"""

from __future__ import annotations

from typing import Any

from ..activation_layers import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Step, Tanh
from ._common import COLORS, DemoContext, host, new_figure

LAYERS = [("step", Step), ("sigmoid", Sigmoid), ("tanh", Tanh), ("ReLU", ReLU),
          ("leaky ReLU (α = 0.1)", lambda: LeakyReLU(alpha=0.1)), ("GELU", GELU),
          ("identity (no nonlinearity)", Identity)]


def run(ctx: DemoContext) -> dict[str, Any]:
    xp, backend = ctx.backend.xp, ctx.backend
    n = ctx.pick(400, 80)   # an even count: the grid never lands on the kink at 0
    z = xp.linspace(-5.0, 5.0, n, dtype=xp.float64, device=backend.device)
    h = 1e-5
    fig = new_figure(16, 7)
    axes = fig.subplots(2, 4).ravel()
    results: dict[str, Any] = {}
    print(f"{'activation':<28}{'f(0)':>9}{'f′(0)':>9}{'range on [-5, 5]':>22}"
          f"{'max f′':>9}{'max |f′ − FD|':>15}")
    zero = xp.zeros((1,), dtype=xp.float64, device=backend.device)
    for ax, (name, make) in zip(axes, LAYERS):
        layer = make()
        a = layer.forward(z)
        da = layer.backward(xp.ones_like(z))                 # f'(z) by backprop
        fd = (make().forward(z + h) - make().forward(z - h)) / (2 * h)
        err = float(xp.max(xp.abs(da - fd)))
        f0 = float(layer.forward(zero)[0])
        d0 = float(layer.backward(xp.ones_like(zero))[0])
        lo, hi, dmax = float(xp.min(a)), float(xp.max(a)), float(xp.max(da))
        print(f"{name:<28}{f0:>9.4f}{d0:>9.4f}{f'[{lo:.3f}, {hi:.3f}]':>22}{dmax:>9.4f}"
              f"{err:>15.1e}")
        results[name] = {"f(0)": f0, "f'(0)": d0, "min": lo, "max": hi, "max_df": dmax,
                         "fd_error": err}
        zh = host(z)
        ax.plot(zh, host(a), color=COLORS[0], lw=2, label="f(z)")
        ax.plot(zh, host(da), color=COLORS[1], lw=2, ls="--", label="f′(z)")
        ax.axhline(0, color="0.7", lw=0.8)
        ax.axvline(0, color="0.7", lw=0.8)
        ax.set_title(name)
        ax.set_xlabel("z")
        ax.set_ylim(-1.6, 3.0)
        ax.legend(loc="upper left", fontsize=8)
    ax = axes[-1]
    scores = xp.asarray([[2.0, 1.0, 0.1, -1.0]], dtype=xp.float64, device=backend.device)
    probs = host(Softmax().forward(scores))[0]
    ax.bar(range(4), host(scores)[0], color=COLORS[5], width=0.4, align="edge",
           label="scores z")
    ax.bar(range(4), probs, color=COLORS[2], width=-0.4, align="edge", label="softmax(z)")
    ax.set_xticks(range(4))
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_title(f"softmax: sums to {probs.sum():.3f} (output layer only)")
    ax.legend(fontsize=8)
    print(f"softmax([2, 1, 0.1, -1]) = {[round(float(p), 4) for p in probs]}, "
          f"sum {probs.sum():.6f}")
    results["softmax"] = [float(p) for p in probs]
    fig.suptitle("Activation functions (solid) and their derivatives (dashed), "
                 "by nnx's forward and backward passes")
    results["png"] = ctx.save(fig)
    return results
