"""Evaluation: the paper's metrics, tables and figures, from saved predictions (numpy only)."""
