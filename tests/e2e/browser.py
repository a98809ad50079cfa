"""Headless Chromium driven over the Chrome DevTools Protocol, through a pipe (``--remote-debugging-pipe``).

No driver binary or websocket library: Chromium reads NUL-terminated JSON commands from file descriptor 3 and writes
replies and events to descriptor 4. Debian's ``chromium`` is installed with apt-get when it is missing.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def ensure_chromium() -> tuple[str | None, str]:
    """The browser's path, installing Debian's ``chromium`` with apt-get when missing; else (None, why not)."""
    found = find_chromium()
    if found:
        return found, ""
    if shutil.which("apt-get") is None:
        return None, "no chromium on PATH and no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            return None, "no chromium on PATH and not root (apt-get install chromium needs root)"
        command = ["sudo", "-n", *command]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
    if result.returncode != 0:  # the package lists may be missing: refresh them once
        update = [*command[:command.index("install")], "update"]
        subprocess.run(update, capture_output=True, text=True, env=env, timeout=600, check=False)
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
    found = find_chromium()
    return (found, "") if found else (None, f"apt-get install chromium failed: {result.stderr.strip()[-500:]}")


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, executable: str, width: int = 1280, height: int = 900):
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def wire_pipes() -> None:  # in the child: the protocol wants its pipes at descriptors 3 and 4
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        self.process = subprocess.Popen(
            [executable, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-sync", "--mute-audio", f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(3, 4),
            preexec_fn=wire_pipes)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None
        self.width, self.height = width, height

    def __enter__(self) -> "Browser":
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.send("Browser.close", session=False, timeout=10)
        except (OSError, RuntimeError, TimeoutError):  # the browser may be gone already; it is killed below
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError(f"chromium closed its protocol pipe (exit code {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: bool = True, timeout: float = 60, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are dropped)."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session and self.session:
            command["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, timeout: float = 60) -> None:
        """Navigate and wait until the document and every image have finished loading."""
        self.send("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while self.evaluate("document.readyState") != "complete" or not self.evaluate(
                "Array.from(document.images).every(i => i.complete)"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading in {timeout} s")
            time.sleep(0.1)

    def screenshot(self, path: str | Path, full_page: bool = True, clip_height: int | None = None) -> Path:
        """A PNG of the page (the whole page, or its top ``clip_height`` CSS pixels)."""
        height = self.height
        if full_page or clip_height:
            height = int(self.evaluate("document.documentElement.scrollHeight")) if full_page else clip_height
        clip = {"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1}
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path
