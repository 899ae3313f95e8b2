"""10.6: the chapter's worked example by nnx's layers, then gradients vanishing in depth.

The example: x = 2, w = 3, no bias, a = σ(wx), L = ½(a − y)², y = 1. nnx's ``mse`` on
one element is (a − y)², so L = mse / 2 and dL/da = (its gradient) / 2.
"""

from __future__ import annotations

import math
from typing import Any

from .. import init, losses
from ..activation_layers import Sigmoid
from ..gradcheck import numerical_gradients
from ..layers import Dense
from ..sequential import MLP, Sequential
from ._common import COLORS, DemoContext, host, new_figure


def half_mse(pred: Any, target: Any) -> tuple[Any, Any]:
    """The chapter's loss ½(a − y)²: nnx's mean squared error halved, and its gradient."""
    loss, grad = losses.mse(pred, target)
    return loss / 2, grad / 2


def _chain(depth: int, w: float, dtype: str = "float64") -> Sequential:
    layers = []
    for _ in range(depth):
        dense = Dense(1, 1, bias=False, init="zeros", dtype=dtype)
        dense.W = [[w]]
        layers += [dense, Sigmoid()]
    return Sequential(*layers)


def worked_example(ctx: DemoContext) -> dict[str, float]:
    xp, dev = ctx.backend.xp, ctx.backend.device
    x = xp.asarray([[2.0]], dtype=xp.float64, device=dev)
    y = xp.asarray([[1.0]], dtype=xp.float64, device=dev)
    model = _chain(1, 3.0)
    dense, sigmoid = model.layers
    z = dense.forward(x)                             # z = w x
    a = sigmoid.forward(z)                           # a = σ(z)
    loss, dL_da = half_mse(a, y)                     # L = ½(a − y)², dL/da = a − y
    da_dz = sigmoid.backward(xp.ones_like(a))        # σ'(z) = a(1 − a)
    dL_dz = sigmoid.backward(dL_da)                  # δ = dL/da · da/dz
    dense.backward(dL_dz, input_grad=False)          # dL/dw = δ · x
    grad = float(dense.dW[0, 0])
    fd = float(numerical_gradients(model, x, y, half_mse, eps=1e-6)["0.W"][0, 0])
    s = 1 / (1 + math.exp(-6.0))
    closed = (s - 1) * s * (1 - s) * 2
    r = {"z": float(z[0, 0]), "a": float(a[0, 0]), "L": float(loss),
         "dL/da": float(dL_da[0, 0]), "da/dz": float(da_dz[0, 0]), "dz/dw": 2.0,
         "dL/dw": grad, "finite_difference": fd, "closed_form": closed}
    print("The chapter's example: x = 2, w = 3, y = 1, a = σ(wx), L = ½(a − y)²")
    print(f"  z = w x              = {r['z']:.12g}")
    print(f"  a = σ(z)             = {r['a']:.12g}")
    print(f"  L = ½(a − y)²        = {r['L']:.6e}")
    print(f"  dL/da = a − y        = {r['dL/da']:.9e}")
    print(f"  da/dz = a(1 − a)     = {r['da/dz']:.9e}")
    print(f"  dz/dw = x            = {r['dz/dw']:g}")
    print(f"  dL/dw (nnx backprop) = {grad:.9e}")
    print(f"  dL/dw (closed form)  = {closed:.9e}")
    print(f"  dL/dw (finite diff.) = {fd:.9e}")
    print(f"  The chapter prints ≈ −1.24e−5: it rounds dL/da to −0.0025 "
          f"(−0.0025 × 0.00247 × 2 = {-0.0025 * 0.00247 * 2:.3e}); exact: {closed:.4e}.")
    return r


def vanishing(ctx: DemoContext, max_depth: int) -> dict[str, list[float]]:
    """|dL/dw₁| of the first weight in a chain of `depth` (w = 3, sigmoid) units."""
    xp, dev = ctx.backend.xp, ctx.backend.device
    x = xp.asarray([[2.0]], dtype=xp.float64, device=dev)
    y = xp.asarray([[1.0]], dtype=xp.float64, device=dev)
    grads, products = [], []
    for depth in range(1, max_depth + 1):
        model = _chain(depth, 3.0)
        h, product = x, 1.0
        for layer in model.layers:                   # the forward pass, layer by layer
            h = layer.forward(h)
            if isinstance(layer, Sigmoid):
                a = float(h[0, 0])
                product *= a * (1 - a)               # σ'(z) = a(1 − a)
        _, d = half_mse(h, y)
        model.backward(d, input_grad=False)
        grads.append(abs(float(model.layers[0].dW[0, 0])))
        products.append(product)
    return {"depth": list(range(1, max_depth + 1)), "grad": grads, "sigma_prime_product": products}


def layer_norms(ctx: DemoContext, activation: str, width: int, depth: int) -> list[float]:
    """‖dL/dW⁽ˡ⁾‖ for each layer of a deep MLP (random inputs and targets, mse)."""
    xp = ctx.backend.xp
    model = MLP([width] * (depth + 1), activation=activation, seed=ctx.seed)
    x = init.normal((256, width), std=1.0, seed=ctx.seed + 1)
    t = init.normal((256, width), std=1.0, seed=ctx.seed + 2)
    _, d = losses.mse(model.forward(x), t)
    model.backward(d, input_grad=False)
    return [float(xp.sqrt(xp.sum(layer.dW * layer.dW))) for layer in model.dense_layers]


def run(ctx: DemoContext) -> dict[str, Any]:
    ex = worked_example(ctx)
    chain = vanishing(ctx, ctx.pick(12, 5))
    print("\nA chain of sigmoid units (w = 3 each): |dL/dw₁| by depth")
    for depth, g, p in zip(chain["depth"], chain["grad"], chain["sigma_prime_product"]):
        print(f"  depth {depth:>2}: |dL/dw1| = {g:.3e}   Π σ'(z) = {p:.3e}   (0.25^depth = "
              f"{0.25 ** depth:.3e})")
    width, depth = ctx.pick(64, 16), 10
    norms = {act: layer_norms(ctx, act, width, depth) for act in ("sigmoid", "relu")}
    print(f"\n{depth} layers of width {width}: ‖dL/dW‖ from the first layer to the last")
    for act, v in norms.items():
        print(f"  {act:<8} " + " ".join(f"{n:.1e}" for n in v)
              + f"   (first/last = {v[0] / v[-1]:.1e})")

    fig = new_figure(16, 4.6)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    xp, dev = ctx.backend.xp, ctx.backend.device
    zs = xp.linspace(-2.0, 9.0, 300, dtype=xp.float64, device=dev)
    sig = Sigmoid()
    ax1.plot(host(zs), host(sig.forward(zs)), color=COLORS[0], lw=2, label="σ(z)")
    ax1.plot(host(zs), host(sig.backward(xp.ones_like(zs))), color=COLORS[1], lw=2, ls="--",
             label="σ′(z)")
    ax1.plot([ex["z"]], [ex["a"]], "o", color="k")
    ax1.annotate(f"z = 6: a = {ex['a']:.4f}\nσ′(6) = {ex['da/dz']:.5f}",
                 (ex["z"], ex["a"]), (3.2, 0.6), arrowprops={"arrowstyle": "->"})
    ax1.text(3.2, 0.25, f"dL/dw = (a − y)·σ′(z)·x\n= {ex['dL/da']:.5f} × {ex['da/dz']:.5f}"
             f" × 2\n= {ex['dL/dw']:.4e}", fontsize=9,
             bbox={"facecolor": "white", "edgecolor": "0.8"})
    ax1.set_xlabel("z")
    ax1.set_title("the worked example: a saturated sigmoid")
    ax1.legend(loc="lower right")
    ax2.semilogy(chain["depth"], chain["grad"], "o-", color=COLORS[0], label="|dL/dw₁|")
    ax2.semilogy(chain["depth"], chain["sigma_prime_product"], "s--", color=COLORS[2],
                 label="Π σ′(z⁽ˡ⁾)")
    ax2.semilogy(chain["depth"], [0.25 ** d for d in chain["depth"]], ":", color="0.4",
                 label="0.25^depth (σ′ ≤ ¼)")
    ax2.set_xlabel("depth (sigmoid units, w = 3)")
    ax2.set_title("the first weight's gradient vanishes with depth")
    ax2.legend()
    layers = range(1, depth + 1)
    ax3.semilogy(layers, norms["sigmoid"], "o-", color=COLORS[1], label="sigmoid, Xavier init")
    ax3.semilogy(layers, norms["relu"], "o-", color=COLORS[0], label="ReLU, He init")
    ax3.set_xlabel("layer (1 = next to the input)")
    ax3.set_ylabel("‖dL/dW‖")
    ax3.set_title(f"gradient norm per layer, {depth} layers × {width}")
    ax3.legend()
    fig.suptitle("Backpropagation is the chain rule: each sigmoid multiplies the gradient "
                 "by σ′ ≤ ¼, so depth makes it vanish")
    return {**ex, "chain": chain, "layer_norms": norms, "png": ctx.save(fig)}
