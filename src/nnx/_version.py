"""The release of nnx (one place, read by the package and by the model files it writes)."""

__version__ = "0.1.0"
