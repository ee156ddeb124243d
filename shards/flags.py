"""Command-line value types shared by ``python -m ingest``, ``train`` and ``eval``: a bad value is refused
where it is parsed, and argparse names the flag in its one-line error."""
import argparse


def int_at_least(low: int):
    """An argparse ``type``: a whole number >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    parse.__name__ = f"int >= {low}"
    return parse
