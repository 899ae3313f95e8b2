"""10.1–10.2: the perceptron learns AND and OR, and never XOR (no line separates it)."""

from __future__ import annotations

from typing import Any

from ..perceptron import Perceptron
from ._common import COLORS, DemoContext, host, new_figure, plane_grid

X = [[0, 0], [0, 1], [1, 0], [1, 1]]
GATES = {"AND": [0, 0, 0, 1], "OR": [0, 1, 1, 1], "XOR": [0, 1, 1, 0]}


def run(ctx: DemoContext) -> dict[str, Any]:
    xp, backend = ctx.backend.xp, ctx.backend
    max_epochs = ctx.pick(30, 10)
    points, gx, gy = plane_grid(xp, backend, -0.5, 1.5, ctx.pick(200, 40))
    fig = new_figure(15, 3.8)
    axes = fig.subplots(1, 4)
    results = {}
    print(f"Rosenblatt's rule w <- w + lr (y - y_hat) x, from zero weights, "
          f"at most {max_epochs} epochs:")
    for ax, (name, y) in zip(axes, GATES.items()):
        p = Perceptron(2, lr=1.0)
        result = p.fit(X, y, max_epochs=max_epochs)
        pred = host(p.predict(X)).tolist()
        w, b = host(p.w).tolist(), float(host(p.b))
        print(f"  {name:<3}: {result}")
        print(f"        w = {w}, b = {b:g}; predictions {pred} (targets {y})")
        results[name] = {"converged": result.converged, "mistakes": result.mistakes,
                         "predictions": pred}
        region = host(xp.reshape(p.predict(points), gx.shape))
        ax.contourf(gx, gy, region, levels=[-0.5, 0.5, 1.5], colors=["#f4d6cc", "#cce6d6"])
        if w[1] != 0 or w[0] != 0:   # the boundary w·x + b = 0
            ax.contour(gx, gy, host(xp.reshape(p.decision_function(points), gx.shape)),
                       levels=[0.0], colors="k", linewidths=1.5)
        for label in (1, 0):
            pts = [x for x, t in zip(X, y) if t == label]
            ax.scatter([a for a, _ in pts], [b for _, b in pts], s=160,
                       c=COLORS[2] if label else COLORS[1], marker="o" if label else "X",
                       edgecolors="k", zorder=3, label=f"y = {label}")
        ax.text(0.03, 0.03, f"w = ({w[0]:g}, {w[1]:g}), b = {b:g}\n(z = 0 counts as 0)",
                transform=ax.transAxes, fontsize=8, va="bottom",
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
        verdict = (f"converged in {result.epochs} epochs" if result.converged
                   else f"no convergence in {result.epochs} epochs")
        ax.set_title(f"{name}: {verdict}")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
        ax.set_xlim(-0.5, 1.5)
        ax.set_ylim(-0.5, 1.5)
        ax.set_aspect("equal")
    axes[0].legend(loc="upper left", fontsize=8)
    ax = axes[3]
    for i, name in enumerate(GATES):
        mistakes = results[name]["mistakes"]
        ax.plot(range(1, len(mistakes) + 1), mistakes, "o-", color=COLORS[i], label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("misclassifications in the epoch")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title("mistakes per epoch")
    ax.legend()
    fig.suptitle("The perceptron is a linear classifier: AND and OR are separable, XOR is not")
    results["png"] = ctx.save(fig)
    return results
