"""JAX arrays (immutable: nnx's in-place updates rebind instead).

Importing this adapter enables ``jax_enable_x64`` so that float64 models exist;
float32 stays the default dtype of every nnx layer. It also sets
``jax_default_matmul_precision`` to ``"highest"`` unless the user has chosen a value:
on a GPU, JAX otherwise multiplies float32 matrices in TensorFloat-32 (10-bit mantissa),
and the same model would give results 1e-3 apart on JAX and on every other backend
(seen on an H200). Set it yourself, before or after ``import nnx``, to trade that back.
"""

from __future__ import annotations

from typing import Any

import jax

jax.config.update("jax_enable_x64", True)
if jax.config.jax_default_matmul_precision is None:   # float32 products in float32
    jax.config.update("jax_default_matmul_precision", "highest")

import jax.numpy as xp  # noqa: E402  (after the x64 switch)
import jax.scipy.special as _special  # noqa: E402
import numpy as np  # noqa: E402

#: JAX arrays are immutable: in-place operators rebind, and nothing needs a defensive copy.
IMMUTABLE_ARRAYS = True


def available() -> str | None:
    return None


def namespace():
    return xp


def array_type():
    return jax.Array


def default_device(device: Any = None) -> Any:
    if device is None:
        return jax.devices()[0]
    if isinstance(device, str):
        return jax.devices(device)[0]
    return device


def from_numpy(a: np.ndarray, device: Any) -> jax.Array:
    return jax.device_put(a, device)


def to_numpy(x: jax.Array) -> np.ndarray:
    return np.array(x, copy=True)


def erf(x: jax.Array) -> jax.Array:
    return _special.erf(x)


def synchronize(device: Any) -> None:
    (jax.device_put(0.0, device) + 0).block_until_ready()


def library_version() -> str:
    return jax.__version__


def device_name(device: Any) -> str:
    return str(getattr(device, "device_kind", device))


def low_precision_dtypes() -> dict[str, Any]:
    return {"float16": xp.float16, "bfloat16": xp.bfloat16}


#: nnx's names → JAX's: "high" is TF32 (JAX's own "high" means three bfloat16 passes).
_JAX_PRECISION = {"highest": "highest", "high": "tensorfloat32", "medium": "bfloat16"}


def set_matmul_precision(precision: str) -> None:
    jax.config.update("jax_default_matmul_precision", _JAX_PRECISION[precision])


def wait(arrays: Any) -> None:
    """Block until every array in ``arrays`` has been computed."""
    jax.block_until_ready(arrays)
