"""Real stack traces: produced by running a Java and a Python program, not typed in."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

# What an application log line starts with; every other line continues the one before it.
START = r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d"

JAVA = r"""
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;

public class Orders {
    static final DateTimeFormatter TS = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS");
    static String now() { return LocalDateTime.now().format(TS); }
    static void charge(int cents) {
        if (cents < 0) throw new IllegalArgumentException("negative amount: " + cents);
    }
    static void checkout(int cents) {
        try { charge(cents); }
        catch (IllegalArgumentException e) { throw new IllegalStateException("checkout failed", e); }
    }
    public static void main(String[] args) {
        System.out.println(now() + " INFO  [main] o.Orders - starting order service");
        try { checkout(-5); }
        catch (Exception e) {
            System.out.println(now() + " ERROR [main] o.Orders - request failed");
            e.printStackTrace(System.out);
        }
        System.out.println(now() + " INFO  [main] o.Orders - still serving");
    }
}
"""

PYTHON = r"""
import logging
logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
log = logging.getLogger("worker")
log.info("worker started")
def parse(text):
    return int(text)
try:
    try:
        parse("12x")
    except ValueError as e:
        raise KeyError("order 42") from e
except KeyError:
    log.exception("job failed")
log.warning("retrying later")
"""


def java_output(tmp_path: Path) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise RuntimeError(
            "java is needed for the Java stack trace test: apt-get install openjdk-17-jdk-headless"
        )
    source = tmp_path / "Orders.java"
    source.write_text(JAVA)
    done = subprocess.run([java, str(source)], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.splitlines()


def python_output() -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PYTHON], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stderr.splitlines()


def expected_records(lines: list[str], start: str = START) -> list[str]:
    """How a start-pattern rule groups `lines`, computed independently of ingest/multiline.py."""
    records: list[list[str]] = []
    for line in lines:
        if re.match(start, line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    return ["\n".join(r) for r in records]
