"""Test bed for end-to-end tests and benchmarks: a vLLM (CPU build) launcher and a tiny model.

Not a scheduling engine: the simulator's engine models live in ``ssjf.sim.engines``
and the gateway's engine adapters in ``ssjf.gateway.backends``.
"""
