"""Headless Chromium driven over the DevTools protocol through a pipe: file:// URL -> links, images, errors.

Pure standard library: Chromium started with ``--remote-debugging-pipe`` reads JSON commands on fd 3 and
writes replies and events on fd 4, each message ending in a NUL byte, so no websocket client is needed.

Example:
    >>> with Chromium() as browser:                          # doctest: +SKIP
    ...     page = browser.open("file:///tmp/site/index.html")
    ...     page.images, page.links, page.errors
"""
from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--hide-scrollbars", "--remote-debugging-pipe"]

# Every image with its load state, every link; awaited until each image has loaded or failed (lazy images
# are switched to eager first: off screen they would never load, and every one must resolve).
_PAGE_JS = """
(async () => {
  Array.from(document.images).forEach(i => { if (i.loading === "lazy") i.loading = "eager"; });
  await Promise.all(Array.from(document.images).map(i => i.complete ? 0 :
      new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })));
  return {images: Array.from(document.images).map(i => [i.src, i.naturalWidth]),
          links: Array.from(document.links).map(a => a.href),
          title: document.title};
})()
"""


def find_chromium() -> str | None:
    """Path of a chromium binary: ``$FEATVIZ_CHROMIUM``, else chromium / chromium-browser on PATH; or None.

    Nothing is installed here: ``make browser-deps`` (which ``.ci/run`` calls) installs Debian's ``chromium``
    before the tests run, and the browser tests skip, saying so, where no binary is found.
    """
    given = os.environ.get("FEATVIZ_CHROMIUM")
    if given:
        return given if shutil.which(given) else None
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    return None


SKIP_REASON = ("chromium is not installed: run `make browser-deps` (Debian's chromium through apt-get; "
               ".ci/run does this) or point FEATVIZ_CHROMIUM at a chromium binary")


@dataclass
class Page:
    url: str
    title: str
    images: list[tuple[str, int]]     # (src, naturalWidth); naturalWidth 0 = did not load
    links: list[str]
    errors: list[str] = field(default_factory=list)   # console errors, exceptions, failed loads


class Chromium:
    """One headless Chromium with one tab; ``open(url)`` loads a page and reports what it found."""

    def __init__(self, binary: str | None = None, width: int = 1200, height: int = 900, timeout: float = 30):
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise RuntimeError(SKIP_REASON)
        self.size, self.timeout = (width, height), timeout

    # -- process and pipe ----------------------------------------------------------------------
    def __enter__(self) -> Chromium:
        self._profile = tempfile.mkdtemp(prefix="featviz-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        # Chromium's --remote-debugging-pipe reads fd 3 and writes fd 4. Put our pipe ends there in the
        # parent for the spawn (saving whatever the parent had on 3 and 4), then restore: no preexec_fn,
        # whose dup2 could clobber the fds subprocess itself uses in the child.
        saved = {}
        for fd in (3, 4):
            try:
                saved[fd] = os.dup(fd)
            except OSError:
                saved[fd] = None
        try:
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.close(r)
            os.close(w)
            self._proc = subprocess.Popen(
                [self.binary, *FLAGS, f"--user-data-dir={self._profile}",
                 f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
                pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            for fd, old in saved.items():
                if old is None:
                    os.close(fd)
                else:
                    os.dup2(old, fd)
                    os.close(old)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id, self._replies, self._events, self._loaded = 0, queue.Queue(), [], threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})
        self._session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self._send(f"{domain}.enable", session=True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._send("Browser.close")
        except Exception:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._to_chrome)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                return
            if not chunk:
                self._replies.put(None)
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                if "id" in msg:
                    self._replies.put(msg)
                else:
                    self._events.append(msg)
                    if msg.get("method") == "Page.loadEventFired":
                        self._loaded.set()

    def _send(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self._session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._replies.get(timeout=self.timeout)
            if reply is None:
                raise RuntimeError("chromium closed the DevTools pipe")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    # -- pages ---------------------------------------------------------------------------------
    def open(self, url: str) -> Page:
        """Load ``url``, wait for every image, and return its images, links and errors."""
        self._events.clear()
        self._loaded.clear()
        result = self._send("Page.navigate", {"url": url}, session=True)
        if result.get("errorText"):
            return Page(url, "", [], [], [f"navigation failed: {result['errorText']}"])
        if not self._loaded.wait(self.timeout):
            raise TimeoutError(f"{url} did not finish loading in {self.timeout} s")
        found = self._send("Runtime.evaluate", {"expression": _PAGE_JS, "awaitPromise": True,
                                                "returnByValue": True}, session=True)["result"]["value"]
        return Page(url, found["title"], [tuple(i) for i in found["images"]], found["links"], self._errors())

    def viewport(self, width: int, height: int = 900, mobile: bool = False) -> None:
        """Emulate a ``width`` x ``height`` CSS-pixel screen (``mobile``: a phone's viewport rules)."""
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}
        self._send("Emulation.setDeviceMetricsOverride", metrics, session=True)

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript ``expression`` (awaited if it is a promise) in the current page."""
        reply = self._send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"javascript failed: {reply['exceptionDetails'].get('text')}")
        return reply["result"].get("value")

    def _errors(self) -> list[str]:
        errors = []
        for ev in list(self._events):
            p = ev.get("params", {})
            if ev.get("method") == "Runtime.exceptionThrown":
                errors.append(p["exceptionDetails"].get("text", "exception"))
            elif ev.get("method") == "Runtime.consoleAPICalled" and p.get("type") == "error":
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif ev.get("method") == "Log.entryAdded" and p["entry"].get("level") == "error":
                errors.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}".strip())
        return errors

    def screenshot(self, path: str) -> None:
        """Save a PNG of the current page (full page height)."""
        data = self._send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                          session=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
