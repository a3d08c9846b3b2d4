"""`ssjf bench serve`: replay real prompts against real engines, FCFS vs SSJF (docs/bench_serve.md)."""
