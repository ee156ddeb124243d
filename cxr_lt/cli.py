"""cxr-lt ingest | train | eval ...: one console command for the project's three command lines.

``cxr-lt train fit ...`` is ``python -m train fit ...``; the console command works from any folder, also one
holding a ``train.py`` (which ``python -m train`` would run instead of the project's).
"""
import importlib
import sys
from pathlib import Path

from . import __version__

COMMANDS = {"ingest": "label files + images -> shards; synthetic data; verify, stats, bench",
            "train": "fit, suite, bench, methods, predict, export",
            "eval": "a run's report, the results table of many runs"}


def usage() -> str:
    lines = [f"usage: cxr-lt {{{','.join(COMMANDS)}}} ... | --version | --help", "", __doc__.splitlines()[0], ""]
    lines += [f"  {name:<8} {text}" for name, text in COMMANDS.items()]
    lines += ["", "`cxr-lt COMMAND --help` lists a command's subcommands."]
    return "\n".join(lines)


def keep_working_folder_out_of_imports() -> None:
    """``python -m cxr_lt`` puts the working folder first on sys.path, where a user's train.py or eval.py would
    shadow the project's package; the console command never has it there. Leave it only when it is the project."""
    here, cwd = Path(__file__).resolve().parents[1], Path.cwd().resolve()
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != cwd or cwd == here]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"cxr-lt {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"{usage()}\n\nerror: {argv[0]!r} is not a command; one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    keep_working_folder_out_of_imports()
    command = importlib.import_module(f"{argv[0]}.__main__")
    return command.main(argv[1:], prog=f"cxr-lt {argv[0]}")
