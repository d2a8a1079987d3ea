"""`logsite <command>`: subcommands live in their own modules and register here."""

import argparse
import os
import sys


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=os.environ.get("LOGSITE_URL", "http://127.0.0.1:8000"), help="Logsite URL"
    )
    parser.add_argument(
        "--token", default=os.environ.get("LOGSITE_TOKEN", ""), help="API token (or set LOGSITE_TOKEN)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logsite", description="Logsite command-line client")
    commands = parser.add_subparsers(dest="command", required=True)
    from cli import search

    search.register(commands)
    try:
        from cli import tail
    except ImportError:
        pass
    else:
        tail.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.token:
        print("logsite: an API token is required (--token or LOGSITE_TOKEN)", file=sys.stderr)
        return 2
    return args.run(args)
