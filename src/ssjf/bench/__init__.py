"""Benchmarks: the simulator studies, the predictor bench and the serving bench.

- ``runner``, ``paper``, ``demo``: policies over seeds in the simulator
  (``ssjf simulate``, ``ssjf bench paper``, ``ssjf demo``).
- ``predictor``, ``inner_cv``: output-length predictors on held-out prompts
  (``ssjf bench predictor``).
- ``serve``: FCFS vs SSJF on a real engine through the gateway (``ssjf bench serve``).

Importing this package is cheap: each module pulls its own dependencies.
"""
