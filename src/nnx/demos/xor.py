"""10.2: a hidden layer solves XOR; a single layer, trained the same way, cannot.

Both networks are trained with the same loss (binary cross-entropy), optimizer (Adam)
and epochs. The single sigmoid neuron's best is p = 0.5 everywhere — loss ln 2 — since
no line separates the two classes; four tanh units re-represent the inputs so that
one output line does.
"""

from __future__ import annotations

import math
from typing import Any

from ..optim import Adam
from ..sequential import MLP
from ._common import COLORS, DemoContext, host, new_figure, plane_grid

X = [[0, 0], [0, 1], [1, 0], [1, 1]]
Y = [0, 1, 1, 0]


def run(ctx: DemoContext) -> dict[str, Any]:
    xp, backend = ctx.backend.xp, ctx.backend
    epochs = ctx.pick(500, 200)
    nets = {"single layer (no hidden layer)": [2, 1], "2 layers (4 tanh hidden units)": [2, 4, 1]}
    points, gx, gy = plane_grid(xp, backend, -0.5, 1.5, ctx.pick(200, 40))
    fig = new_figure(15, 4.4)
    axes = fig.subplots(1, 3)
    results: dict[str, Any] = {}
    print(f"XOR, binary cross-entropy, Adam (lr 0.05), {epochs} full-batch epochs:")
    for i, (ax, (name, sizes)) in enumerate(zip(axes, nets.items())):
        model = MLP(sizes, activation="tanh", output_activation="sigmoid", seed=ctx.seed)
        history = model.fit(X, Y, loss="binary_cross_entropy", optimizer=Adam(lr=0.05),
                            epochs=epochs, progress=False)
        p = host(xp.reshape(model.predict(X), (-1,))).tolist()
        accuracy = sum((pi > 0.5) == bool(t) for pi, t in zip(p, Y)) / 4
        print(f"  {name:<31} loss {history.loss[-1]:.4f}, p = "
              f"[{', '.join(f'{v:.3f}' for v in p)}], accuracy {accuracy:.0%}")
        results[name] = {"loss": history.loss, "p": p, "accuracy": accuracy}
        prob = host(xp.reshape(model.predict(points), gx.shape))
        image = ax.contourf(gx, gy, prob, levels=[i / 10 for i in range(11)], cmap="RdYlGn",
                            vmin=0, vmax=1)
        spread = float(abs(prob - 0.5).max())
        if spread > 0.05:     # a decision line only where the network commits to one
            ax.contour(gx, gy, prob, levels=[0.5], colors="k", linewidths=1.5)
        else:
            ax.text(0.5, 0.5, f"p = 0.5 ± {spread:.0e}\neverywhere", ha="center",
                    va="center", fontsize=11, bbox={"facecolor": "white", "alpha": 0.85})
        for label in (1, 0):
            pts = [x for x, t in zip(X, Y) if t == label]
            ax.scatter([a for a, _ in pts], [b for _, b in pts], s=160, marker="o" if label
                       else "X", c=COLORS[2] if label else COLORS[1], edgecolors="k", zorder=3,
                       label=f"y = {label}")
        ax.set_title(f"{name}: accuracy {accuracy:.0%}")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
        ax.set_aspect("equal")
        ax.set_xticks([-0.5, 0, 0.5, 1, 1.5])
        ax.set_yticks([-0.5, 0, 0.5, 1, 1.5])
        axes[2].semilogy(range(1, epochs + 1), history.loss, color=COLORS[i], lw=2, label=name)
    fig.colorbar(image, ax=axes[1], label="p(y = 1)", shrink=0.85)
    axes[0].legend(loc="upper left", fontsize=8)
    ax = axes[2]
    ax.axhline(math.log(2), color="0.4", ls=":", label="ln 2: p = 0.5 everywhere")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (binary cross-entropy)")
    ax.set_title("same training, different architecture")
    ax.legend(fontsize=8)
    print(f"  (ln 2 = {math.log(2):.4f}: the loss of answering 0.5 everywhere, the best any "
          "single line can do on XOR)")
    fig.suptitle("XOR is not linearly separable: one layer is stuck at p = 0.5, a hidden layer "
                 "solves it")
    results["png"] = ctx.save(fig)
    return results
