"""How a run trains: ``fit`` top to bottom, the trainer's epochs, the step, its state, the stages, the loaders,
inference over a split and torchrun."""
