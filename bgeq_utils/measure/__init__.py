"""Measuring one method: quality and fidelity metrics, speed side by side, memory, the pipeline."""
