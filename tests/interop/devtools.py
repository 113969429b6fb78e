"""Chromium driven over its DevTools protocol: the viewer's test (`test_serve.py`) and its
benchmark (`benches/viewer_points.py`) load the page in a real headless browser."""

import json
import os
import shutil
import subprocess
import time

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class DevTools:
    """Chrome's DevTools protocol over --remote-debugging-pipe (fds 3 and 4, NUL-delimited JSON)."""

    def __init__(self, tmp):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():
            # Through fresh copies: either end may already sit on fd 3 or 4.
            read, write = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={tmp}", "--window-size=1000,700", "--no-first-run", "about:blank"],
            preexec_fn=fds, pass_fds=(3, 4, to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer, self.next_id = b"", 0

    def call(self, method, session=None, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.from_chrome, 1 << 20)
                assert chunk, "chromium closed the DevTools pipe"
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply
                return reply["result"]

    def close(self):
        self.proc.kill()
        self.proc.wait()

    def page(self, url):
        """A new tab at `url`, loaded: its session."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.navigate", session, url=url)
        deadline = time.monotonic() + 30
        path = url.split("//", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
        while self.call("Runtime.evaluate", session, expression="location.pathname + document.readyState",
                        returnByValue=True)["result"].get("value") != f"/{path}complete":
            assert time.monotonic() < deadline, f"{url} did not load"
            time.sleep(0.05)
        return session

    def evaluate(self, session, expression):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", session, expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, session, condition, seconds=30):
        """Waits until `condition` (JavaScript) holds in the page."""
        return self.evaluate(
            session,
            "new Promise((ok, fail) => { const t0 = Date.now(); const t = setInterval(() => {"
            f" if ({condition}) {{ clearInterval(t); ok(true); }}"
            f" else if (Date.now() - t0 > {seconds * 1000}) {{ clearInterval(t); fail(new Error(document.body.dataset.state + ': ' + document.getElementById('status').textContent)); }}"
            "}, 20); })",
        )
