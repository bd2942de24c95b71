"""Use cases. Each service takes its collaborators explicitly; none knows HTTP or SQL."""
