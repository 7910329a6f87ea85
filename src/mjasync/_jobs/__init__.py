"""_jobs."""
