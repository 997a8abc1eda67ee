"""What is measured against: the FP32 reference model and the evaluation data."""
