"""The records and vocabulary every stage shares: paths, environment, Result files, intervals."""
