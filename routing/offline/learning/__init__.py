"""A router that keeps learning its own traffic: the learner's rounds and its state directory."""
