"""Runs of notebooks: the parameter profiles they read, shared by the runner and the sweep."""
