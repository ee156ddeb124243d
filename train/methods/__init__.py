"""What a method is: the registry of named methods (``registry``) and its pieces: losses, class weighting,
mixing, classifier heads and decoupling."""
