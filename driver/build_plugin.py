"""Build the Logsite logging plugin on this machine and install it into dockerd; no image is pulled.

    sudo python3 driver/build_plugin.py --url http://logsite.internal:8514 \\
        --read-url http://logsite.internal:8000 --token-file /root/logsite-plugin.token

1. a Debian minbase tree with python3, python3-aiohttp and python3-protobuf, made by debootstrap
   from the mirror this machine's apt sources already use and upgraded from its -updates and
   -security archives (cached in --cache-dir: later builds take seconds; --refresh builds it
   again to pick up newer fixes);
2. the plugin's code in /opt/logsite/driver of a hard-linked copy of that tree, and config.json;
3. `docker plugin create`, `docker plugin set` (URL, read URL, token, --set KEY=VALUE) and
   `docker plugin enable`.

`--dir-only DIR` stops after step 2 and leaves the plugin directory for `docker plugin create`
on another host of the same architecture. Needs root (debootstrap), debootstrap and
debian-archive-keyring, and the docker CLI. This file is not part of the plugin's rootfs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

DRIVER = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(DRIVER.parent))

from debroot.apt_sources import NoMirrorError  # noqa: E402
from debroot.rootfs import RootfsBuildError, ensure_rootfs  # noqa: E402

# Debian's own packages, upgraded from the security archive, so every rebuild of the plugin
# picks up Debian's security fixes;
# driver/logentry.py builds its descriptor at run time because this protobuf (4.21 on Debian
# 12) cannot load gencode from a current protoc.
PACKAGES = ("python3", "python3-aiohttp", "python3-protobuf")
CODE_DIR = "opt/logsite/driver"  # config.json: workdir /opt/logsite, entrypoint python3 -m driver
DEFAULT_CACHE = Path("/var/cache/logsite-plugin")
NOT_IN_ROOTFS = {"build_plugin.py"}


class BuildError(RuntimeError):
    pass


def base_tree(cache: Path, suite: str | None, mirror: str | None, refresh: bool = False) -> Path:
    """The cached Debian tree with the plugin's packages, upgraded with security fixes."""
    return ensure_rootfs(PACKAGES, cache, suite=suite, mirror=mirror, updates=True, refresh=refresh)


def plugin_files() -> list[Path]:
    """The plugin's code: every module of driver/ but this builder."""
    return sorted(p for p in DRIVER.glob("*.py") if p.name not in NOT_IN_ROOTFS)


def assemble(target: Path, base: Path) -> Path:
    """Write the plugin directory (config.json + rootfs/) into `target`, which must not exist.

    The base tree is hard-linked, not copied, when it is on the same filesystem: the cached tree
    is never written to, because only new files are added and none is edited in place.
    """
    target.mkdir(parents=True)
    shutil.copyfile(DRIVER / "config.json", target / "config.json")
    root = target / "rootfs"
    if subprocess.run(["cp", "-al", str(base), str(root)], capture_output=True).returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["cp", "-a", str(base), str(root)], check=True)
    code = root / CODE_DIR
    code.mkdir(parents=True)
    for source in plugin_files():
        shutil.copyfile(source, code / source.name)
    for directory in ("run/docker/plugins", "var/lib/logsite-plugin"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    return target


class DockerCli:
    def __init__(self, host: str | None = None, env: Mapping[str, str] | None = None) -> None:
        docker = shutil.which("docker")
        if docker is None:
            raise BuildError("the docker CLI is missing")
        self.argv = [docker, *(["-H", host] if host else [])]
        self.env = dict(env) if env is not None else None

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.argv, *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if check and result.returncode != 0:
            raise BuildError(f"docker {' '.join(args[:2])} failed: {result.stderr.strip()}")
        return result


def install(
    docker: DockerCli,
    name: str,
    plugin_dir: Path,
    settings: Mapping[str, str],
    *,
    replace: bool = False,
    enable: bool = True,
) -> None:
    if docker("plugin", "inspect", name, check=False).returncode == 0:
        if not replace:
            raise BuildError(f"plugin {name} exists; pass --replace to remove and rebuild it")
        # -f: disabling a plugin that containers still log to is refused otherwise.
        docker("plugin", "disable", "-f", name, check=False)
        docker("plugin", "rm", "-f", name)
    docker("plugin", "create", name, str(plugin_dir))
    if settings:
        docker("plugin", "set", name, *(f"{key}={value}" for key, value in settings.items()))
    if enable:
        docker("plugin", "enable", name, timeout=120)


def build(
    name: str,
    settings: Mapping[str, str],
    *,
    cache: Path = DEFAULT_CACHE,
    docker: DockerCli | None = None,
    suite: str | None = None,
    mirror: str | None = None,
    replace: bool = False,
    enable: bool = True,
    refresh: bool = False,
) -> None:
    base = base_tree(cache, suite, mirror, refresh)
    docker = docker or DockerCli()
    with tempfile.TemporaryDirectory(prefix="plugin-build-", dir=cache) as work:
        install(docker, name, assemble(Path(work) / "plugin", base), settings, replace=replace, enable=enable)


def settings_from(args: argparse.Namespace) -> dict[str, str]:
    settings = {}
    if args.url:
        settings["LOGSITE_URL"] = args.url
    if args.read_url:
        settings["LOGSITE_READ_URL"] = args.read_url
    token = args.token or os.environ.get("LOGSITE_TOKEN", "")
    if args.token_file:
        token = Path(args.token_file).read_text().strip()
    if token:
        settings["LOGSITE_TOKEN"] = token
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BuildError(f"--set wants KEY=VALUE, not {item!r}")
        settings[key] = value
    return settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", default="logsite", help="plugin name for --log-driver (default: logsite)")
    parser.add_argument("--url", help="Logsite's push receiver, e.g. http://logsite.internal:8514")
    parser.add_argument("--read-url", help="Logsite's web server, for `docker logs` (default: --url)")
    parser.add_argument("--token", help="the plugin driver's token (prefer --token-file or $LOGSITE_TOKEN)")
    parser.add_argument("--token-file", help="file holding the token")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="another plugin setting (repeatable)"
    )
    parser.add_argument("-H", "--docker-host", help="dockerd to install into (default: the docker CLI's)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"default: {DEFAULT_CACHE}")
    parser.add_argument("--suite", help="Debian suite of the rootfs (default: this machine's)")
    parser.add_argument("--mirror", help="Debian mirror URL (default: the one apt uses here)")
    parser.add_argument("--refresh", action="store_true", help="build the cached rootfs again (newer fixes)")
    parser.add_argument("--replace", action="store_true", help="remove an existing plugin of that name first")
    parser.add_argument("--no-enable", action="store_true", help="create and configure, but do not enable")
    parser.add_argument("--dir-only", type=Path, metavar="DIR", help="only write the plugin directory to DIR")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("build_plugin.py needs root: debootstrap and `docker plugin create` do")
    try:
        if args.dir_only:
            assemble(args.dir_only, base_tree(args.cache_dir, args.suite, args.mirror, args.refresh))
            print(
                f"plugin directory written to {args.dir_only}; install it with: docker plugin create NAME DIR"
            )
            return
        build(
            args.name,
            settings_from(args),
            cache=args.cache_dir,
            docker=DockerCli(args.docker_host),
            suite=args.suite,
            mirror=args.mirror,
            replace=args.replace,
            enable=not args.no_enable,
            refresh=args.refresh,
        )
    except (BuildError, RootfsBuildError, NoMirrorError, OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"build_plugin.py: {exc}") from None
    state = "created" if args.no_enable else "enabled"
    print(f"plugin {args.name} {state}; use it with: docker run --log-driver {args.name} ...")


if __name__ == "__main__":
    main()
