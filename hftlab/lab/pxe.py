"""hftlab.lab.pxe: the DHCP, TFTP and HTTP services that netboot HFT-OS.

:class:`PxeServer` serves a tree written by hftlab.lab.deploy.write_pxe_tree
on one interface, inside a network namespace (a QEMU run's) or the current
one (a hardware run's IFACE):

* dnsmasq, DHCP and TFTP only (no DNS: port 0), hands out exactly one
  address, the SUT's (with ``mac``: only to that MAC, every other client is
  ignored, so a lab network's other machines never get an answer), and
  names the boot file by what asks: iPXE (DHCP option 175) gets boot.ipxe,
  a plain BIOS PXE firmware undionly.kpxe, a UEFI one ipxe.efi;
* an HTTP server with byte ranges (iPXE's SAN boot reads the disk image by
  range requests), a thread of this process whose listening socket was
  opened inside the namespace.

Both stop on every path; dnsmasq's log and lease file and the HTTP
requests stay in the run directory.
"""
from __future__ import annotations

import http.server
import ipaddress
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from hftlab._core import ffi as _ffi, lib as _lib
from hftlab.errors import RunError, ToolMissingError
from hftlab.util.proc import spawn, stop_group

__all__ = ["PxeServer", "RangeHttpServer", "HTTP_PORT"]

HTTP_PORT = 8080
#: A unique-local IPv6 prefix announced by router advertisements on the
#: interface: iPXE configures IPv6 beside DHCP and, with no router answering
#: its solicitations, waits ~13 s before it fetches the script (measured).
RA_PREFIX = "fd48:4654:4f53::"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def _tcp_socket(netns: str | None) -> socket.socket:
    err = _ffi.new("char[256]")
    path = _ffi.new("char[]", f"/var/run/netns/{netns}".encode()) if netns else _ffi.NULL
    fd = _lib.hx_netns_socket(path, socket.AF_INET, socket.SOCK_STREAM, 0, err, 256)
    if fd < 0:
        raise RunError(_ffi.string(err).decode())
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM, fileno=fd)


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET/HEAD of the files directly in the server's root, one byte range at most."""

    protocol_version = "HTTP/1.1"  # keep-alive: iPXE reads the disk in many small ranges

    def _file(self) -> Path | None:
        name = self.path.split("?", 1)[0].lstrip("/")
        root: Path = self.server.root  # type: ignore[attr-defined]
        p = root / name
        return p if name and "/" not in name and p.is_file() else None

    def _send(self, head_only: bool) -> None:
        p = self._file()
        if p is None:
            self.send_error(404)
            return
        size = p.stat().st_size
        start, end, code = 0, size - 1, 200
        m = _RANGE.match(self.headers.get("Range", "").strip())
        if self.headers.get("Range"):
            if not m or not (m.group(1) or m.group(2)):
                self.send_error(416)
                return
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:  # a suffix: the last N bytes
                start = max(0, size - int(m.group(2)))
            if start > end:
                self.send_error(416)
                return
            code = 206
        self.send_response(code)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Type", "application/octet-stream")
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not head_only:
            self.server.requests.append((p.name, start, end + 1))  # type: ignore[attr-defined]
            with open(p, "rb") as fh:
                fh.seek(start)
                self.wfile.write(fh.read(end - start + 1))

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self._send(False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(True)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass  # the requests are kept in server.requests instead


class RangeHttpServer:
    """HTTP with byte ranges on ip:port inside `netns` (None: here), serving `root`."""

    def __init__(self, root: Path, ip: str, port: int = HTTP_PORT, netns: str | None = None) -> None:
        self.root, self.ip, self.port, self.netns = Path(root), ip, port, netns
        self.requests: list[tuple[str, int, int]] = []  #: GETs: file, start, end
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}/"

    def start(self) -> "RangeHttpServer":
        sock = _tcp_socket(self.netns)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.ip, self.port))
            sock.listen(16)
        except OSError as exc:
            sock.close()
            raise RunError(f"HTTP server: cannot listen on {self.ip}:{self.port}"
                           f"{' in ' + self.netns if self.netns else ''}: {exc.strerror}") from None
        srv = http.server.ThreadingHTTPServer((self.ip, self.port), _Handler, bind_and_activate=False)
        srv.socket.close()
        srv.socket = sock
        srv.daemon_threads = True
        srv.root, srv.requests = self.root, self.requests  # type: ignore[attr-defined]
        self._server = srv
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="hftlab-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "RangeHttpServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PxeServer:
    """dnsmasq (DHCP + TFTP of `root`) and the HTTP server on `iface`.

    host_ip/prefix is iface's address, client_ip the one address offered."""

    def __init__(self, root: Path, iface: str, host_ip: str, client_ip: str, *, prefix: int = 24,
                 netns: str | None = None, mac: str | None = None, logdir: Path | None = None,
                 http_port: int = HTTP_PORT) -> None:
        self.root, self.iface, self.host_ip, self.client_ip = Path(root), iface, host_ip, client_ip
        self.prefix, self.netns, self.mac = prefix, netns, mac
        self.logdir = Path(logdir) if logdir else self.root.parent
        self.http = RangeHttpServer(self.root, host_ip, http_port, netns)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.logdir / "dnsmasq.log"

    def command(self) -> list[str]:
        exe = shutil.which("dnsmasq")
        if not exe:
            raise ToolMissingError("dnsmasq", "apt-get install dnsmasq-base")
        mask = str(ipaddress.ip_network(f"{self.host_ip}/{self.prefix}", strict=False).netmask)
        cmd = [exe, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
               "--port=0", "--user=root", "--group=root", f"--interface={self.iface}",
               "--bind-interfaces", f"--pid-file={self.logdir / 'dnsmasq.pid'}",
               f"--dhcp-leasefile={self.logdir / 'dnsmasq.leases'}",
               f"--dhcp-range={self.client_ip},{self.client_ip},{mask},10m",
               "--enable-tftp", f"--tftp-root={self.root}", "--log-dhcp",
               f"--log-facility={self.log_path}",
               "--dhcp-match=set:ipxe,175",
               "--dhcp-match=set:efi,option:client-arch,7",
               "--dhcp-match=set:efi,option:client-arch,9",
               "--dhcp-boot=tag:ipxe,boot.ipxe",
               "--dhcp-boot=tag:!ipxe,tag:efi,ipxe.efi",
               "--dhcp-boot=tag:!ipxe,tag:!efi,undionly.kpxe",
               "--enable-ra", f"--dhcp-range={RA_PREFIX},ra-only"]
        if self.mac:  # only the SUT: every other client is ignored
            cmd += [f"--dhcp-host={self.mac},{self.client_ip}", "--dhcp-ignore=tag:!known"]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        return cmd

    def start(self, timeout: float = 10.0) -> "PxeServer":
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.log_path.write_bytes(b"")
        self.http.start()
        self._add_ipv6()
        self.proc = spawn(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # dnsmasq logs its TFTP root once serving
            if b"TFTP root is" in self.log_path.read_bytes():
                return self
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                self.stop()
                raise RunError(f"dnsmasq exited with status {self.proc.returncode}: {out.strip()} "
                               f"{self.log_path.read_text(errors='replace')[-500:]}")
            time.sleep(0.02)
        self.stop()
        raise RunError(f"dnsmasq did not start serving within {timeout:.0f} s ({self.log_path})")

    def _add_ipv6(self) -> None:
        """The RA prefix's ::1 on iface (dnsmasq announces prefixes it has)."""
        cmd = ["ip", *(["-n", self.netns] if self.netns else []), "-6", "addr", "replace",
               f"{RA_PREFIX}1/64", "dev", self.iface, "nodad"]
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise RunError(f"`{' '.join(cmd)}` failed: {p.stderr.strip()}")
        self._ipv6_added = True

    def leases(self) -> list[str]:
        """DHCP acknowledgements (DHCPACK lines) in dnsmasq's log."""
        return [ln for ln in self.log_path.read_text(errors="replace").splitlines() if "DHCPACK" in ln]

    def tftp_sent(self) -> list[str]:
        return re.findall(r"sent (\S+) to", self.log_path.read_text(errors="replace"))

    def stop(self) -> None:
        stop_group(self.proc, signal.SIGTERM, 5.0)
        self.http.stop()
        if getattr(self, "_ipv6_added", False):
            subprocess.run(["ip", *(["-n", self.netns] if self.netns else []), "-6", "addr", "del",
                            f"{RA_PREFIX}1/64", "dev", self.iface], capture_output=True, check=False)
            self._ipv6_added = False

    def summary(self) -> dict:
        """What was served, for run.json."""
        reqs = self.http.requests
        return {"dhcp_acks": len(self.leases()), "tftp_sent": self.tftp_sent(),
                "http_requests": len(reqs), "http_bytes": sum(b - a for _, a, b in reqs),
                "http_url": self.http.url, "dnsmasq_log": str(self.log_path)}

    def __enter__(self) -> "PxeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
