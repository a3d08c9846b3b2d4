"""The simulator's unit of work, :class:`~ssjf.job.Job` (it lives on the ground floor, with
:class:`~ssjf.request.Request`, so workloads build jobs without importing the simulator)."""

from ssjf.job import Job

__all__ = ["Job"]
