import argparse
import os
import sys

from logsite_cli import tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="logsite", description="Logsite command-line client")
    commands = parser.add_subparsers(dest="command", required=True)
    tail_cmd = commands.add_parser("tail", help="print recent lines, and follow them live with -f")
    tail_cmd.add_argument("query", nargs="?", default="", help="a query, e.g. 'container:web-1 level>=warn'")
    tail_cmd.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    tail_cmd.add_argument("--recent", type=int, default=20, help="how many recent lines first (default 20)")
    tail_cmd.add_argument("--url", default=os.environ.get("LOGSITE_URL", "http://127.0.0.1:8000"))
    tail_cmd.add_argument("--token", default=os.environ.get("LOGSITE_TOKEN"), help="API token (lsu_…)")
    tail_cmd.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("an API token is needed: --token or LOGSITE_TOKEN")
    if not 0 <= args.recent <= 10_000:
        parser.error("--recent must be between 0 and 10000")
    return tail.run(args)


if __name__ == "__main__":
    sys.exit(main())
