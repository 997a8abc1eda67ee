"""Per-method studies the notebooks show: FP16 overflow, LLM.int8() outlier columns, storage bits."""
