"""A throwaway local Mosquitto broker for the profile scenarios (the product's own launcher)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> int:
    """The first of ``n`` consecutive free loopback ports (checked, not reserved)."""
    for _ in range(200):
        base = free_port()
        if base + n > 65535:
            continue
        try:
            for p in range(base + 1, base + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {n} consecutive free loopback ports")


class LocalBroker:
    """``with LocalBroker(tmpdir) as b: b.host, b.port`` - Mosquitto on a free loopback port."""

    def __init__(self, directory: Path, timeout: float = 10.0) -> None:
        self.dir = directory
        self.host = "127.0.0.1"
        self.port = free_port()
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalBroker:
        if not Path(MOSQUITTO).exists():
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "mosquitto.conf"
        user = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(
            f"{user}listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
        )
        with (self.dir / "mosquitto.out").open("ab") as log:
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT, cwd=self.dir
            )
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self.proc.returncode} "
                    f"(see {self.dir / 'mosquitto.out'})"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.3):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError(
                        f"mosquitto is not listening on port {self.port} after {self.timeout:.0f} s"
                    ) from None
                time.sleep(0.05)

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
