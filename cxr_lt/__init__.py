"""The ``cxr-lt`` console command and the project's version; ``from cxr_lt import load_model`` for a finished run.

``cxr_lt`` is the one name of the project that no user file shadows: ``train``, ``eval`` and ``ingest`` are also
common script names (``python -m train`` in a folder holding a ``train.py`` runs that script).
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cxr-lt")  # pyproject.toml's version, the one source of truth, as installed
except PackageNotFoundError:  # run from a clone that was never installed
    __version__ = "0+unknown"


def __getattr__(name):
    if name == "load_model":  # imported on first use: ``cxr-lt --version`` does not load torch
        from train.use.load import load_model

        return load_model
    raise AttributeError(f"module 'cxr_lt' has no attribute {name!r}")
