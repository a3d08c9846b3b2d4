"""PNG figures for simulation results (matplotlib, imported lazily).

The figures are made to show the tail and the paired comparison: a log-scale
CCDF of JCT (the starvation tail stays visible), mean and p99 JCT side by side,
and per-seed changes vs FCFS on the same jobs (a real -6% is not hidden by the
between-seed spread of absolute figures). Oracle policies, which read true
lengths, are drawn hatched, dashed or hollow and labelled "(oracle)". Every
figure's subtitle is a context line naming workload, engine, cost model and load.
"""

from ssjf.plots._common import ORACLE_SUFFIX, figure_context, oracle_labels, policy_label
from ssjf.plots.curves import load_curves
from ssjf.plots.tail import jct_ccdf, mean_p99_bars, paired_changes, simulation_figures

__all__ = [
    "ORACLE_SUFFIX",
    "figure_context",
    "jct_ccdf",
    "load_curves",
    "mean_p99_bars",
    "oracle_labels",
    "paired_changes",
    "policy_label",
    "simulation_figures",
]
