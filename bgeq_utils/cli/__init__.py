"""Entry points: the notebook runner, the notebook refresher, the speed suite."""
