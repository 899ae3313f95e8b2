"""The one compiled piece of nnx: the NumPy optimizers' fused updates (backends/_fused.c).

Everything else is in pyproject.toml. The extension is optional: where no C compiler is
found, the install still succeeds and nnx runs the same updates as NumPy calls
(``nnx.backends.numpy.fused_updates()`` says which one runs).
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: No fused multiply-add (and no fast-math, the default): the loops round as NumPy's ufuncs
#: do. -fno-math-errno and -fno-trapping-math change no result (errno and traps only) and
#: let the compiler vectorise sqrt and the comparisons' selects.
_GCC_FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
_MSVC_FLAGS = ["/O2", "/fp:precise"]


class _BuildExt(build_ext):
    def build_extensions(self) -> None:
        flags = _MSVC_FLAGS if self.compiler.compiler_type == "msvc" else _GCC_FLAGS
        for ext in self.extensions:
            ext.extra_compile_args = flags
        super().build_extensions()


setup(
    ext_modules=[Extension("nnx.backends._fused", ["backends/_fused.c"], optional=True)],
    cmdclass={"build_ext": _BuildExt},
)
