"""Real serving engines for end-to-end tests and benchmarks (vLLM's CPU build)."""
