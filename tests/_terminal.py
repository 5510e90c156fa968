"""What the tests of terminal behaviour share: a command run on a pseudo-terminal, and the
processes of a process group that outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

#: The liprobe command of this environment.
LIPROBE = Path(sys.executable).with_name("liprobe")


def on_a_terminal(args, env_extra: dict | None = None, timeout: float = 180):
    """Run ``liprobe ARGS`` with stdin, stdout and stderr on a pseudo-terminal of 120
    columns: (exit code, everything written to it)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    p = subprocess.Popen([str(LIPROBE), *map(str, args)], stdin=slave, stdout=slave,
                         stderr=slave, close_fds=True, env={**os.environ, **(env_extra or {})})
    os.close(slave)
    buf = b""
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
            elif p.poll() is not None:
                break
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    return rc, buf.decode(errors="replace")


def group(pid: int) -> list[int]:
    """The processes of the process group ``pid`` (pgrep)."""
    out = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def group_left(pid: int, wait_s: float = 5.0) -> list[str]:
    """The command lines of the processes of group ``pid`` still there after ``wait_s``
    (multiprocessing's resource tracker ends by itself once its pipe closes); they are
    killed, so that a failing test leaves nothing behind."""
    deadline = time.time() + wait_s
    while group(pid) and time.time() < deadline:
        time.sleep(0.1)
    left = group(pid)
    what = []
    for q in left:
        cmd = Path(f"/proc/{q}/cmdline")
        what.append(cmd.read_text().replace("\0", " ") if cmd.exists() else str(q))
        try:
            os.kill(q, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return what


def ctrl_c(args, stderr_path, ready, ready_timeout: float = 180):
    """Run ``liprobe ARGS`` in its own process group (stderr to ``stderr_path``), wait
    until ``ready(process)`` is true, then send SIGINT to the whole group as Ctrl-C in a
    terminal does: (exit code, seconds from SIGINT to exit, command lines of the processes
    that outlived it, stderr)."""
    with open(stderr_path, "w") as f:
        p = subprocess.Popen([str(LIPROBE), *map(str, args)], stdout=subprocess.DEVNULL,
                             stderr=f, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + ready_timeout
        while not ready(p):
            assert p.poll() is None, f"ended before it could be interrupted: " \
                                     f"{Path(stderr_path).read_text()}"
            assert time.time() < deadline, Path(stderr_path).read_text()
            time.sleep(0.05)
        t0 = time.time()
        os.killpg(p.pid, signal.SIGINT)
        rc = p.wait(timeout=30)
        took = time.time() - t0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    return rc, took, group_left(p.pid), Path(stderr_path).read_text()
