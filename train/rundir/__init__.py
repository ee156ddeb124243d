"""What a run leaves on disk and when it resumes: the run dir's rules, its files and logs, checkpoints, results."""
