"""Pack chest X-ray datasets into resized WebDataset shards: ``python -m ingest``."""


class IngestError(Exception):
    """Bad input: the message names the file (and row) and the fix."""
