"""Training: losses, class weights, mixing, decoupling, the trainer (``python -m train``)."""
