"""ssjf: speculative shortest-job-first scheduling for LLM serving.

The package root stays light: it imports numpy-free core types only. Heavy
pieces (torch, transformers, fastapi) live behind optional extras and are
imported lazily by the modules that need them.
"""

from ssjf.estimate import LengthEstimate
from ssjf.policies import Policy, available_policies, make_policy
from ssjf.queue import StarvationGuard, WaitingQueue
from ssjf.request import Request

__all__ = [
    "LengthEstimate",
    "Policy",
    "Request",
    "StarvationGuard",
    "WaitingQueue",
    "available_policies",
    "make_policy",
]

__version__ = "0.1.0"
