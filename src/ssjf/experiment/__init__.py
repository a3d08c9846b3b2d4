"""Experiments: run policies over seeds on one engine and workload, and the built-in studies."""

from ssjf.experiment.runner import (
    ExperimentResult,
    PolicyEntry,
    RunSettings,
    parse_policies,
    run_experiment,
)

__all__ = ["ExperimentResult", "PolicyEntry", "RunSettings", "parse_policies", "run_experiment"]
