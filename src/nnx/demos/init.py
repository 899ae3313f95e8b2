"""10.7: how the variance of activations evolves over 20 layers for each initialization.

Zeros: every activation is 0 and every neuron identical (symmetry never breaks).
Xavier (Var w = 2/(n_in + n_out)) suits tanh; He (Var w = 2/n_in) suits ReLU, which
zeroes half its inputs — with Xavier a ReLU network's signal halves at every layer.
"""

from __future__ import annotations

from typing import Any

from .. import init
from ..activation_layers import make_activation
from ..layers import Dense
from ._common import COLORS, DemoContext, new_figure

INITS = {"zeros": "zeros", "Xavier": "xavier_normal", "He": "he_normal"}
ACTIVATIONS = ("tanh", "relu")


def variances(ctx: DemoContext, activation: str, init_name: str, width: int, depth: int,
              batch: int) -> list[float]:
    """Var(a⁽ˡ⁾) over all units and samples, for l = 0 (the input) … depth."""
    xp = ctx.backend.xp
    a = init.normal((batch, width), std=1.0, seed=ctx.seed)      # x ~ N(0, 1)
    out = [float(xp.var(a))]
    f = make_activation(activation)
    for layer in range(depth):
        dense = Dense(width, width, init=init_name, seed=ctx.seed + 1 + layer)
        a = f.forward(dense.forward(a))                             # a = f(W a + b)
        out.append(float(xp.var(a)))
    return out


def run(ctx: DemoContext) -> dict[str, Any]:
    width, depth, batch = ctx.pick(512, 64), 20, ctx.pick(1000, 200)
    results: dict[str, Any] = {}
    fig = new_figure(13, 4.8)
    axes = fig.subplots(1, 2, sharey=True)
    print(f"Var(activations) through {depth} layers of width {width} (input Var = 1, "
          f"{batch} samples); layers 1, 5, 10, 20:")
    for ax, act in zip(axes, ACTIVATIONS):
        for i, (label, name) in enumerate(INITS.items()):
            v = variances(ctx, act, name, width, depth, batch)
            results[f"{act}/{label}"] = v
            shown = "  ".join(f"{v[k]:.2e}" for k in (1, 5, 10, depth))
            print(f"  {act:<4} + {label:<6}: {shown}")
            ax.plot(range(depth + 1), v, "o-", ms=3, color=COLORS[i], label=label)
        ax.set_yscale("symlog", linthresh=1e-7)
        ax.set_xlabel("layer")
        ax.set_title(f"{act}")
        ax.set_xticks(range(0, depth + 1, 2))
        ax.legend(title="initialization")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("variance of the activations (symlog: 0 is 0)")
    relu_xavier, tanh_xavier = results["relu/Xavier"], results["tanh/Xavier"]
    print(f"ReLU + Xavier halves the variance at every layer: layer {depth} / layer 1 = "
          f"{relu_xavier[depth] / relu_xavier[1]:.1e} "
          f"(0.5^{depth - 1} = {0.5 ** (depth - 1):.1e}); "
          f"tanh + Xavier decays only slowly (layer {depth} / layer 1 = "
          f"{tanh_xavier[depth] / tanh_xavier[1]:.2f}); zeros stay exactly "
          f"{results['tanh/zeros'][depth]:g}: every neuron computes the same thing")
    fig.suptitle("Initialization decides whether the signal survives depth: He keeps ReLU's "
                 "variance, Xavier halves it per layer; zeros never break symmetry")
    results["png"] = ctx.save(fig)
    return results
