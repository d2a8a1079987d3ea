"""A real Docker engine for end-to-end tests, isolated from the host's own Docker.

Each `Dockerd` has its own data root, exec root, socket, pidfile, daemon.json, cgroup parent and
containerd namespaces under one private directory, so several test sessions (and the host's
docker.service) can run side by side. Images cannot be pulled here: import them from local root
filesystems (`import_busybox`, `import_rootfs`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.e2e import cleanup, images

# dockerd 20.10 keeps managed plugins' sockets here whatever --exec-root says (to keep the
# paths short), so this directory is shared by every dockerd on the machine.
PLUGIN_RUN_DIR = Path("/run/docker/plugins")
OWNER_FILE = "owner.pid"  # the test process that started this daemon; see reap_abandoned()
ROOT_PREFIX = "lsd-"
UNIX_PATH_MAX = 107  # sun_path is 108 bytes including the trailing NUL
PLUGIN_ID_LEN = 64
TMP = "/tmp"


class DockerdError(RuntimeError):
    """dockerd could not be started; the message carries the tail of its log."""


class DockerCommandError(RuntimeError):
    def __init__(self, argv: list[str], result: subprocess.CompletedProcess[bytes]):
        self.argv, self.returncode = argv, result.returncode
        self.stdout, self.stderr = result.stdout, result.stderr
        super().__init__(
            f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr.decode(errors='replace')[-4000:]}"
        )


@dataclass(frozen=True, slots=True)
class RunResult:
    container_id: str
    returncode: int
    stdout: bytes  # empty for detached runs: the output went to the log driver only
    stderr: bytes


class Dockerd:
    def __init__(
        self,
        root: Path | None = None,
        *,
        extra_args: Iterable[str] = (),
        start_timeout: float = 60.0,
        keep_root: bool = False,
    ):
        self._own_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=TMP))
        self.data_root = self.root / "data"
        self.exec_root = self.root / "x"
        self.socket = self.root / "docker.sock"
        self.pidfile = self.root / "dockerd.pid"
        self.log_path = self.root / "dockerd.log"
        self.host = f"unix://{self.socket}"
        # Derived from the root so that Dockerd(root=...) finds what a killed session left there;
        # containerd namespaces allow only [A-Za-z0-9._-].
        instance = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        self.namespace = f"logsite-{instance}"
        self.cgroup_parent = f"/logsite-e2e-{instance}"
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.keep_root = keep_root or bool(os.environ.get("LOGSITE_E2E_KEEP_DOCKERD"))
        self.process: subprocess.Popen[bytes] | None = None
        self.timings: dict[str, float] = {}
        self._cli = shutil.which("docker")
        self._cli_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")},
            # The user's ~/.docker (contexts, credential helpers) must not steer the tests.
            "DOCKER_CONFIG": str(self.root / "cli"),
        }

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Dockerd:
        dockerd = shutil.which("dockerd")
        if dockerd is None or self._cli is None:
            raise DockerdError("dockerd or docker not found: run scripts/install-system-packages")
        if os.geteuid() != 0:
            raise DockerdError("dockerd needs root")
        for directory in (self.data_root, self.exec_root, self.root / "cli"):
            directory.mkdir(parents=True, exist_ok=True)
        (self.root / OWNER_FILE).write_text(f"{os.getpid()}\n")
        config = self.root / "daemon.json"
        config.write_text("{}\n")  # never pick up the host's /etc/docker/daemon.json
        argv = [
            dockerd,
            f"--config-file={config}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.pidfile}",
            f"--host={self.host}",
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--bridge=none",
            f"--cgroup-parent={self.cgroup_parent}",
            # If the host runs containerd.service, dockerd 20.10 uses it instead of its own; own
            # namespaces keep our containers and plugins apart from the host's dockerd there.
            f"--containerd-namespace={self.namespace}",
            f"--containerd-plugins-namespace={self.namespace}-plugins",
            *self.extra_args,
        ]
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - started
        return self

    def _wait_ready(self, started: float) -> None:
        assert self.process is not None
        while True:
            if self.process.poll() is not None:
                raise DockerdError(f"dockerd exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.socket.exists():
                probe = self.docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=15)
                if probe.returncode == 0:
                    return
            if time.monotonic() - started > self.start_timeout:
                raise DockerdError(f"dockerd not ready after {self.start_timeout}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop dockerd and remove every process, cgroup and mount it left under its roots."""
        plugin_ids = self._plugin_ids()
        if self.process is not None and self.process.poll() is None:
            self._remove_containers()
            # A plugin is PID 1 in its container and ignores SIGTERM unless it handles it, so
            # dockerd would wait 10 s per plugin on shutdown: kill them first.
            self._kill_cgroups(plugin_ids)
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        # Plugins ignore --cgroup-parent and dockerd can leave them running; a killed dockerd
        # leaves containerd and shims: kill what is in our cgroups or names our root/namespace.
        self._kill_cgroups([self.cgroup_parent, *plugin_ids])
        leftovers = cleanup.pids_with_cmdline_containing(f"{self.root}/")
        leftovers += cleanup.pids_with_cmdline_containing(f"-namespace {self.namespace}")
        cleanup.kill_and_reap(set(leftovers))
        for name in [self.cgroup_parent, *plugin_ids]:
            cleanup.remove_cgroups(cleanup.cgroup_dirs(name))
        for plugin_id in plugin_ids:
            cleanup.unmount_under(PLUGIN_RUN_DIR / plugin_id)
            shutil.rmtree(PLUGIN_RUN_DIR / plugin_id, ignore_errors=True)
        cleanup.unmount_under(self.root)
        if self._own_root and not self.keep_root:
            cleanup.remove_tree(self.root)

    def _remove_containers(self) -> None:
        # SIGKILL now rather than dockerd's shutdown: it waits 10 s per container that ignores
        # SIGTERM (a shell as PID 1 does) and gives up after 15 s in total.
        ids = self.docker("ps", "-aq", check=False, timeout=30).stdout.decode().split()
        if ids:
            self.docker("rm", "-f", *ids, check=False, timeout=120)

    def _plugin_ids(self) -> list[str]:
        # From the data root rather than the API, so a dead daemon's plugins are found as well.
        plugins = self.data_root / "plugins"
        if not plugins.is_dir():
            return []
        return [p.name for p in plugins.iterdir() if len(p.name) == PLUGIN_ID_LEN and p.is_dir()]

    @staticmethod
    def _kill_cgroups(names: list[str]) -> None:
        for name in names:
            cleanup.kill_and_reap(cleanup.pids_in_cgroups(cleanup.cgroup_dirs(name)))

    def __enter__(self) -> Dockerd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no dockerd log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- the docker CLI ------------------------------------------------------------------------

    def docker(
        self, *args: object, input: bytes | None = None, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run the docker CLI against this daemon; raise DockerCommandError on failure if `check`."""
        argv = [str(self._cli), "-H", self.host, *map(str, args)]
        result = subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=self._cli_env)
        if check and result.returncode != 0:
            raise DockerCommandError(argv, result)
        return result

    def import_busybox(self, tag: str = "logsite-busybox:e2e") -> str:
        started = time.monotonic()
        changes = ["--change", "ENV PATH=/bin", "--change", 'CMD ["sh"]']
        self.docker("import", *changes, "-", tag, input=images.busybox_tar())
        self.timings["import_busybox"] = time.monotonic() - started
        return tag

    def import_rootfs(self, tag: str, rootfs: Path, changes: Iterable[str] = ()) -> str:
        """Import a directory (e.g. a debootstrap root) as an image, streaming it through tar."""
        started = time.monotonic()
        tar = images.tar_directory(rootfs)
        argv = [str(self._cli), "-H", self.host, "import"]
        for change in changes:
            argv += ["--change", change]
        argv += ["-", tag]
        result = subprocess.run(argv, stdin=tar.stdout, capture_output=True, env=self._cli_env, timeout=900)
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0 or result.returncode != 0:
            raise DockerCommandError(argv, result)
        self.timings[f"import {tag}"] = time.monotonic() - started
        return tag

    def run(
        self,
        image: str,
        *command: str,
        name: str | None = None,
        log_driver: str | None = None,
        log_opts: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        network: str = "none",
        detach: bool = False,
        remove: bool = False,
        args: Iterable[str] = (),
        check: bool = True,
        timeout: float = 120,
    ) -> RunResult:
        """`docker run`; attached by default, returning the container's output and id.

        `network` is "none" or "host": with --bridge=none there is no default bridge network.
        Log drivers are run by dockerd on the host, so they reach 127.0.0.1 whatever it is.
        """
        argv: list[str] = ["run", f"--network={network}"]
        cidfile = self.root / f"cid-{uuid.uuid4().hex}"
        argv.append(f"--cidfile={cidfile}")
        if detach:
            argv.append("--detach")
        if remove:
            argv.append("--rm")
        if name:
            argv.append(f"--name={name}")
        if log_driver:
            argv.append(f"--log-driver={log_driver}")
        for key, value in (log_opts or {}).items():
            argv.append(f"--log-opt={key}={value}")
        for key, value in (env or {}).items():
            argv.append(f"--env={key}={value}")
        for key, value in (labels or {}).items():
            argv.append(f"--label={key}={value}")
        argv += [*args, image, *command]
        result = self.docker(*argv, check=False, timeout=timeout)
        container_id = cidfile.read_text().strip() if cidfile.exists() else ""
        cidfile.unlink(missing_ok=True)
        if check and result.returncode != 0:
            raise DockerCommandError([str(self._cli), "-H", self.host, *argv], result)
        stdout = b"" if detach else result.stdout
        return RunResult(container_id, result.returncode, stdout, result.stderr)

    def wait(self, container: str, timeout: float = 120) -> int:
        """Block until the container exits; its exit code."""
        return int(self.docker("wait", container, timeout=timeout).stdout.strip())

    def logs(self, container: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        """`docker logs`: the container's stdout lines in .stdout, stderr lines in .stderr."""
        return self.docker("logs", *args, container)

    def inspect(self, obj: str) -> dict:
        return json.loads(self.docker("inspect", obj).stdout)[0]

    # --- managed plugins -----------------------------------------------------------------------

    def create_plugin(
        self, name: str, config: Mapping[str, object], rootfs: Path, files: Mapping[str, bytes] = {}
    ) -> str:
        """`docker plugin create` from a config.json and a root filesystem plus extra files.

        The rootfs (usually the cached debootstrap tree) is hard-linked, not copied, into the
        build directory; files are written to fresh inodes so the cache is never modified.
        """
        socket_name = str(config.get("interface", {}).get("socket", ""))  # type: ignore[union-attr]
        socket_path = f"{PLUGIN_RUN_DIR}/{'0' * PLUGIN_ID_LEN}/{socket_name}"
        if len(socket_path) > UNIX_PATH_MAX:
            raise ValueError(f"plugin socket path would be {len(socket_path)} bytes: use a shorter name")
        started = time.monotonic()
        build = self.root / f"plugin-build-{uuid.uuid4().hex[:8]}"
        build.mkdir()
        try:
            (build / "config.json").write_text(json.dumps(config))
            _link_tree(rootfs, build / "rootfs")
            target_root = (build / "rootfs").resolve()
            for relative, data in files.items():
                target = build / "rootfs" / relative.lstrip("/")
                if not target.parent.resolve().is_relative_to(target_root):
                    raise ValueError(f"{relative} leaves the plugin rootfs")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)  # break the hard link before writing
                target.write_bytes(data)
                target.chmod(0o755)
            self.docker("plugin", "create", name, build, timeout=900)
        finally:
            cleanup.remove_tree(build)
        self.timings[f"plugin create {name}"] = time.monotonic() - started
        return name

    def enable_plugin(self, name: str, settings: Mapping[str, str] | None = None) -> None:
        if settings:
            self.docker("plugin", "set", name, *[f"{k}={v}" for k, v in settings.items()])
        self.docker("plugin", "enable", name, timeout=60)


def reap_abandoned(parent: Path = Path(TMP)) -> list[Path]:
    """Stop daemons whose test process died without stopping them (e.g. killed by a timeout).

    Roots of live sessions, including other helpers' running in parallel, are left alone.
    """
    reaped = []
    for root in parent.glob(f"{ROOT_PREFIX}*"):
        try:
            owner = int((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not started yet, or not ours
        if Path(f"/proc/{owner}").exists():
            continue
        Dockerd(root).stop()
        cleanup.remove_tree(root)
        reaped.append(root)
    return reaped


def _link_tree(source: Path, target: Path) -> None:
    linked = subprocess.run(["cp", "-al", str(source), str(target)], capture_output=True)
    if linked.returncode != 0:  # a different filesystem: fall back to a real copy
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["cp", "-a", str(source), str(target)], check=True)
