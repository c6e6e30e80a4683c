"""Runners: one interface, ``infer(left, right) -> Prediction``, for every backend."""
