"""``solver="lbfgs"``: scikit-learn's full-batch L-BFGS-B, with nnx computing each evaluation.

As scikit-learn's ``_fit_lbfgs``: the weights are packed into one float64 vector (every
``coefs_[i]`` (in, out) row-major, then every ``intercepts_[i]``) and handed to
``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` with ``maxiter=max_iter``,
``maxfun=max_fun`` and ``gtol=tol``; its result is checked by scikit-learn's own
``_check_optimize_result`` (the ``ConvergenceWarning`` at ``max_iter`` / ``max_fun``).
Each evaluation runs nnx's forward and backward pass over all rows on the estimator's
backend: the vector goes to the device once, and the gradient comes back with the loss
as its last element in one transfer. The objective is scikit-learn's: the (weighted)
data loss of :mod:`._losses` plus ``alpha/(2s) Σ‖W‖²`` (``s``: the sum of the sample
weights, or n).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import scipy.optimize
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.optimize import _check_optimize_result

from ..backend import asarray, to_numpy

__all__ = ["LbfgsSolver"]

_SCIPY_BLAS: list[Any] = []


def scipy_blas_single_threaded() -> Any:
    """A context in which SciPy's own BLAS (not NumPy's) runs one thread.

    L-BFGS-B's small vector products go through SciPy's bundled OpenBLAS, whose thread
    pool competes with NumPy's on a small machine: on 2 cores, one ``setulb`` call on
    17k parameters took ~8 ms with two threads and ~0.1 ms with one.
    """
    if not _SCIPY_BLAS:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:   # pragma: no cover - scikit-learn depends on threadpoolctl
            _SCIPY_BLAS.append(None)
        else:
            controller = ThreadpoolController()
            paths = [lib.filepath for lib in controller.lib_controllers
                     if "scipy" in os.path.basename(os.path.dirname(lib.filepath))]
            _SCIPY_BLAS.append(controller.select(filepath=paths) if paths else None)
    selected = _SCIPY_BLAS[0]
    return contextlib.nullcontext() if selected is None else selected.limit(limits=1)


class LbfgsSolver:
    """Mixin of :class:`nnx.sklearn._base.BaseMLP`: ``_fit_lbfgs``.

    Uses the estimator's network (``_model``, ``_backend``), ``_to_device``,
    ``_targets`` (y with the weights as a last column) and ``_make_loss``.
    """

    def _fit_lbfgs(self, X: Any, Y: Any, sample_weight: Any) -> None:
        backend, layers = self._backend, self._model.dense_layers
        xp, dtype = backend.xp, self._xp_dtype
        X_dev = self._to_device(X)
        y_dev = self._targets(Y, sample_weight)
        loss, cell = self._make_loss(weighted=sample_weight is not None)
        alpha = float(self.alpha)
        model = self._model
        # the packed layout: W (out, in) travels as coefs_ (in, out), row-major
        sizes = [(d.in_features, d.out_features) for d in layers]
        bounds, start = [], 0
        for n_in, n_out in sizes:
            bounds.append((start, start + n_in * n_out))
            start += n_in * n_out
        for _, n_out in sizes:
            bounds.append((start, start + n_out))
            start += n_out
        n_layers = len(layers)

        def unpack(v: Any) -> None:
            dev = asarray(v, backend=backend, dtype=self._dtype_name)
            for i, d in enumerate(layers):
                a, b = bounds[i]
                d.W = xp.permute_dims(xp.reshape(dev[a:b], sizes[i]), (1, 0))
                a, b = bounds[n_layers + i]
                d.b = dev[a:b]

        def loss_grad(v: Any) -> tuple[float, Any]:
            unpack(v)
            value, dZ = loss(model.forward(X_dev), y_dev)
            model.backward(dZ, input_grad=False)
            s = cell.s
            if alpha:
                squares = sum(xp.sum(d.W * d.W) for d in layers)
                value = value + (0.5 * alpha) * squares / s
            parts = []
            for d in layers:                        # dL/dW + αW/s, in coefs_' orientation
                g = d.dW + (alpha / s) * d.W if alpha else d.dW
                parts.append(xp.reshape(xp.permute_dims(g, (1, 0)), (-1,)))
            parts += [d.db for d in layers]
            parts.append(xp.reshape(xp.astype(value, dtype), (1,)))
            packed = to_numpy(xp.concat(parts)).astype("float64")   # one transfer
            return float(packed[-1]), packed[:-1]

        x0 = to_numpy(xp.concat([xp.reshape(xp.permute_dims(d.W, (1, 0)), (-1,)) for d in layers]
                                + [d.b for d in layers])).astype("float64")
        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        with scipy_blas_single_threaded():
            result = scipy.optimize.minimize(
                loss_grad, x0, method="L-BFGS-B", jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                         **_get_additional_lbfgs_options_dict("iprint", iprint)})
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = float(result.fun)
        unpack(result.x)
