"""Training (``python -m train``): the methods (``methods/``), the loop (``loop/``), the run dir (``rundir/``),
using a finished run (``use/``), and at the top the config, the run context, devices, models, suite and bench.

``from train import load_model``: a finished run's model, preprocessing, class names and method.
"""


def __getattr__(name):
    if name == "load_model":  # imported on first use: ``import train.x`` stays light
        from .use.load import load_model

        return load_model
    raise AttributeError(f"module 'train' has no attribute {name!r}")
