"""Network audit of every Python process started with this directory on ``PYTHONPATH``.

Python imports ``sitecustomize`` at start-up, so each process of a run (make, dvc and its
stages, the MLflow server and its workers, serving, verify) loads this module when the
test puts its directory first on ``PYTHONPATH`` and names a log in ``NETWORK_AUDIT_LOG``.
It wraps the socket calls that reach another host: ``connect``/``connect_ex``/``sendto``
on any socket and the name lookups (``getaddrinfo``, ``gethostbyname[_ex]``). Attempts to
leave the loopback range, and lookups of names that are not local, are appended to the
log as JSON lines (pid, command, call, target, the calling frames); nothing is blocked.
Each process also logs one ``start`` line, so a test can tell the audit was loaded.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import traceback
from typing import Any

LOG = os.environ.get("NETWORK_AUDIT_LOG")
LOCAL_NAMES = {"", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _local_name(host: object) -> bool:
    """True for loopback/unspecified addresses, local names and this machine's own name."""
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    name = name.strip("[]").split("%", 1)[0]
    if name.lower() in LOCAL_NAMES or name == socket.gethostname():
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _local_address(family: int, address: Any) -> bool:
    if family not in (socket.AF_INET, socket.AF_INET6):
        return True  # AF_UNIX, netlink: on this machine
    host = address[0] if isinstance(address, tuple) else address
    return _local_name(host)


def _record(call: str, target: object) -> None:
    frames = [] if call == "start" else [
        f"{frame.filename}:{frame.lineno}"
        for frame in traceback.extract_stack()[:-2]
        if "netaudit" not in frame.filename
    ][-8:]
    entry = {"pid": os.getpid(), "argv": sys.orig_argv[:4], "call": call,
             "target": repr(target), "frames": frames}
    line = (json.dumps(entry) + "\n").encode()
    fd = os.open(LOG or os.devnull, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _install() -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo
    real_gethostbyname = socket.gethostbyname
    real_gethostbyname_ex = socket.gethostbyname_ex

    def connect(self: socket.socket, address: Any) -> None:
        if not _local_address(self.family, address):
            _record("connect", address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _local_address(self.family, address):
            _record("connect_ex", address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: bytes, *args: Any) -> int:
        address = args[-1]
        if not _local_address(self.family, address):
            _record("sendto", address)
        return real_sendto(self, data, *args)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _local_name(host):
            _record("getaddrinfo", host)
        return real_getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host: str) -> str:
        if not _local_name(host):
            _record("gethostbyname", host)
        return real_gethostbyname(host)

    def gethostbyname_ex(host: str) -> Any:
        if not _local_name(host):
            _record("gethostbyname_ex", host)
        return real_gethostbyname_ex(host)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[assignment]
    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = gethostbyname_ex


if LOG:
    _install()
    _record("start", None)
