"""Training: losses, class weights, mixing, decoupling, the trainer (``python -m train``).

``from train import load_model``: a finished run's model, preprocessing, class names and method.
"""


def __getattr__(name):
    if name == "load_model":  # imported on first use: ``import train.x`` stays light
        from .load import load_model

        return load_model
    raise AttributeError(f"module 'train' has no attribute {name!r}")
