"""The main job: an MLP on the 8×8 handwritten digits that scikit-learn ships.

1,797 images of 64 pixels (0–16, scaled to [0, 1]), a stratified 75/25 split, an MLP
64 → 256 → 128 → 10 with ReLU, softmax cross-entropy and Adam. Prints the test accuracy
and the confusion matrix, saves the trained model as safetensors (and checks that the
reloaded file predicts the same), and draws the loss curves, the confusion matrix and
the digits it still gets wrong.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ..backend import asarray
from ..io import load, save
from ..optim import Adam
from ..sequential import MLP
from ._common import COLORS, DemoContext, host, new_figure, require


def data(seed: int) -> tuple[Any, Any, Any, Any]:
    """``(X_train, X_test, y_train, y_test)`` as host arrays: pixels in [0, 1], labels 0–9."""
    datasets = require("sklearn.datasets")
    selection = require("sklearn.model_selection")
    digits = datasets.load_digits()
    X, y = (digits.data / 16.0).astype("float32"), digits.target
    return selection.train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)


def run(ctx: DemoContext) -> dict[str, Any]:
    metrics = require("sklearn.metrics")
    X_train, X_test, y_train, y_test = data(ctx.seed)
    sizes = ctx.pick([64, 256, 128, 10], [64, 32, 10])
    epochs = ctx.pick(40, 8)
    print(f"digits: {len(X_train)} training and {len(X_test)} test images of 8×8 pixels; "
          f"MLP {' → '.join(map(str, sizes))} (ReLU), Adam lr 1e-3, batch 32, {epochs} epochs, "
          f"on {ctx.backend.name}")
    model = MLP(sizes, activation="relu", seed=ctx.seed)
    start = time.perf_counter()
    history = model.fit(X_train, y_train, loss="softmax_cross_entropy", optimizer=Adam(lr=1e-3),
                        epochs=epochs, batch_size=32, seed=ctx.seed,
                        validation_data=(X_test, y_test), progress=not ctx.quick)
    seconds = time.perf_counter() - start
    logits = model.predict(X_test)
    pred = host(ctx.backend.xp.argmax(logits, axis=1))
    accuracy = float((pred == y_test).mean())
    print(f"trained in {seconds:.1f} s; final training loss {history.loss[-1]:.4f}, "
          f"test loss {history.val_loss[-1]:.4f}")
    print(f"test accuracy: {accuracy:.2%} ({int((pred == y_test).sum())}/{len(y_test)})")
    cm = metrics.confusion_matrix(y_test, pred, labels=list(range(10)))
    print("confusion matrix (rows: true digit, columns: predicted):")
    print("      " + " ".join(f"{j:>3}" for j in range(10)))
    for i, row in enumerate(cm):
        print(f"  {i:>2}: " + " ".join(f"{v:>3}" for v in row))

    os.makedirs(ctx.out, exist_ok=True)
    path = os.path.join(ctx.out, "digits.safetensors")
    save(model, path)
    reloaded = load(path)
    same = bool((host(reloaded.predict(asarray(X_test))) == host(logits)).all())
    print(f"saved the model to {path}; reloaded, it predicts "
          f"{'the same' if same else 'DIFFERENTLY'}")

    fig = new_figure(15, 6.2)
    grid = fig.add_gridspec(2, 12, height_ratios=[3.2, 1])
    ax_loss, ax_acc, ax_cm = (fig.add_subplot(grid[0, 4 * i:4 * i + 4]) for i in range(3))
    ep = range(1, epochs + 1)
    ax_loss.semilogy(ep, history.loss, color=COLORS[0], lw=2, label="training")
    ax_loss.semilogy(ep, history.val_loss, color=COLORS[1], lw=2, label="test")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_title("softmax cross-entropy")
    ax_loss.legend()
    ax_acc.plot(ep, [100 * a for a in history.val_accuracy], color=COLORS[2], lw=2)
    ax_acc.axhline(97, color="0.5", ls=":", label="97%")
    ax_acc.set_ylim(ctx.pick(90, 50), 100)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_title(f"test accuracy: {accuracy:.1%}")
    ax_acc.legend(loc="lower right")
    ax_cm.imshow(cm, cmap="Blues")
    for i in range(10):
        for j in range(10):
            if cm[i, j]:
                ax_cm.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                           color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax_cm.set_xticks(range(10))
    ax_cm.set_yticks(range(10))
    ax_cm.set_xlabel("predicted")
    ax_cm.set_ylabel("true")
    ax_cm.set_title("confusion matrix (test)")
    wrong = [i for i in range(len(y_test)) if pred[i] != y_test[i]][:12]
    for k in range(12):
        ax = fig.add_subplot(grid[1, k])
        ax.set_axis_off()
        if k < len(wrong):
            i = wrong[k]
            ax.imshow(X_test[i].reshape(8, 8), cmap="gray_r")
            ax.set_title(f"{y_test[i]} → {pred[i]}", fontsize=9, color=COLORS[1])
    fig.suptitle(f"nnx MLP on scikit-learn's digits: {accuracy:.1%} test accuracy in "
                 f"{seconds:.1f} s ({ctx.backend.name}); bottom: true → predicted for "
                 "misclassified test digits")
    return {"accuracy": accuracy, "seconds": seconds, "history": history,
            "confusion": cm.tolist(), "model": path, "reload_same": same,
            "png": ctx.save(fig)}
