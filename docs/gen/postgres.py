"""A throwaway PostgreSQL server on 127.0.0.1 for the PostgreSQL tutorial in the docs build.

Uses Debian's server binaries (``apt-get install postgresql``); as root the server runs as the
``postgres`` user (initdb refuses root). Password authentication, a random password, fsync off;
the cluster is deleted when the context ends. Without the binaries, yields ``None`` (the
tutorial then uses SQLite), or raises with ``MEMXBAR_REQUIRE_POSTGRES=1`` (set by ``.ci/run``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def server_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin folder, if any."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    return found[-1].parent if found else None


@contextlib.contextmanager
def throwaway_server() -> Iterator[str | None]:
    """Yield the ``postgresql://`` URL of a fresh server, or ``None`` when none can start."""
    bin_dir = server_bin()
    if bin_dir is None:
        if os.environ.get("MEMXBAR_REQUIRE_POSTGRES") == "1":
            raise SystemExit("PostgreSQL server binaries not found: apt-get install postgresql")
        yield None
        return
    tmp = Path(tempfile.mkdtemp(prefix="memxbar-docs-pg-"))
    prefix: list[str] = []
    try:
        password = secrets.token_hex(12)
        pwfile = tmp / "pw"
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (tmp, pwfile):
                os.chown(path, user.pw_uid, user.pw_gid)
            prefix = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        data = tmp / "data"
        subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-A",
                        "scram-sha-256", "-U", "postgres", f"--pwfile={pwfile}", "--no-sync"],
                       check=True, capture_output=True)
        opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-w",
                        "-l", str(tmp / "server.log"), "start"], check=True, capture_output=True)
        try:
            yield f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m",
                            "immediate", "stop"], capture_output=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
