"""Pack chest X-ray datasets into resized WebDataset shards: ``python -m ingest``."""
from shards.errors import UsageError


class IngestError(UsageError):
    """Bad input: the message names the file (and row) and the fix."""
