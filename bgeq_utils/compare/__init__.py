"""The comparison: Results of many runs, measured side by side, checked against the guide, and a choice.

``measured`` builds the one measured table every view reads; ``tables`` and ``bgeq_utils.plots`` show it,
``ledger`` checks the guide's claims (claims.yaml), ``recommend`` picks a method, ``report`` writes the
shareable files.
"""
from bgeq_utils.compare import ledger, measured, recommend, report, tables
from bgeq_utils.compare.measured import Measured, load, tabulate

__all__ = ["Measured", "ledger", "load", "measured", "tabulate", "recommend", "report", "tables"]
