"""Test fixtures around the wide-area copy (第6-4): the resident record system's side of a
CS's copy spool (docs/import.md §8), and a private CUPS scheduler with a printer that files
each job it prints.

RecordSystem(spool, records, mode) watches <spool>/outgoing/ in a thread, as a vendor's
resident record system would, and answers each request it finds in <spool>/answers/:

    records: code -> the copy to send ({"address", "householder"?, "persons": [...]})
    mode(request) -> one of
        ("answer", copy)          the copy (status answered)
        ("refuse", reason, text)  a refusal (status refused)
        ("raw", bytes)            a file of these bytes (a malformed answer)
        ("hold",)                 no answer yet (a slow system); answer later with release()

Cups(folder) runs `cupsd -f` with its own configuration folder and a loopback port (never
the system's scheduler); add_printer(name) makes a queue whose backend writes each job's
document to <folder>/out/<name>/job-<id>.pdf, the paper the test reads back.
"""

import json
import os
import subprocess
import threading

from . import free_port, wait_until


class RecordSystem:
    def __init__(self, spool, records=None, mode=None, interval=0.02):
        self.spool = spool
        self.records = dict(records or {})
        self.mode = mode or self.default
        self.interval = interval
        self.seen = []  # request documents read, in order
        self.held = {}  # request_id -> request document
        self._stop = threading.Event()
        self._thread = None

    def default(self, req):
        copy = self.records.get(req["person"]["code"])
        if copy is None:
            return ("refuse", "rrs-refused", "住民記録システムに該当なし")
        return ("answer", copy)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        return False

    def _run(self):
        out = os.path.join(self.spool, "outgoing")
        while not self._stop.is_set():
            try:
                names = sorted(n for n in os.listdir(out)
                               if n.endswith(".json") and not n.startswith("."))
            except FileNotFoundError:
                names = []
            for name in names:
                path = os.path.join(out, name)
                try:
                    with open(path, encoding="utf-8") as f:
                        req = json.load(f)
                except (FileNotFoundError, ValueError):
                    continue
                rid = req["request_id"]
                if rid in self.held or any(r["request_id"] == rid for r in self.seen):
                    continue
                self.seen.append(req)
                self._answer(req, self.mode(req))
            self._stop.wait(self.interval)

    def _answer(self, req, what):
        rid = req["request_id"]
        if what[0] == "hold":
            self.held[rid] = req
            return
        if what[0] == "raw":
            data = what[1]
        elif what[0] == "answer":
            data = json.dumps({"format": "juki-copy-answer/1", "request_id": rid,
                               "status": "answered", "copy": what[1]},
                              ensure_ascii=False).encode()
        else:
            data = json.dumps({"format": "juki-copy-answer/1", "request_id": rid,
                               "status": "refused", "reason": what[1], "detail": what[2]},
                              ensure_ascii=False).encode()
        self.write(rid + ".json", data)

    def write(self, name, data):
        """A file into answers/ as the interface says: a dot name, then renamed in."""
        answers = os.path.join(self.spool, "answers")
        tmp = os.path.join(answers, "." + name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(answers, name))

    def release(self, rid, what):
        """Answer a request held so far."""
        req = self.held.pop(rid)
        self._answer(req, what)


BACKEND = """#!/bin/sh
# A test printer: each job's document into the folder of the device URI, as job-<id>.pdf.
if [ $# -eq 0 ]; then echo 'direct jukifile "Unknown" "juki test printer"'; exit 0; fi
dir=${DEVICE_URI#jukifile:}
if [ -n "$6" ]; then cat "$6" > "$dir/.job-$1"; else cat > "$dir/.job-$1"; fi
mv "$dir/.job-$1" "$dir/job-$1.pdf"
"""


class Cups:
    def __init__(self, folder):
        self.dir = folder
        self.port = free_port()
        self.server = "127.0.0.1:%d" % self.port
        self.proc = None

    def __enter__(self):
        d = self.dir
        for sub in ("spool", "tmp", "state", "cache", "log", "ppd", "out", "bin/backend"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.chmod(os.path.join(d, "out"), 0o755)
        for sub in ("filter", "daemon", "cgi-bin", "notifier", "monitor", "driver"):
            if os.path.exists("/usr/lib/cups/" + sub):
                os.symlink("/usr/lib/cups/" + sub, os.path.join(d, "bin", sub))
        backend = os.path.join(d, "bin", "backend", "jukifile")
        with open(backend, "w") as f:
            f.write(BACKEND)
        os.chmod(backend, 0o700)  # root's: the scheduler runs it as root, writing out/
        with open(os.path.join(d, "cupsd.conf"), "w") as f:
            f.write("Listen 127.0.0.1:%d\nLogLevel info\nWebInterface No\nBrowsing No\n"
                    "PreserveJobFiles No\n"
                    "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
                    "<Location /admin>\n  Order allow,deny\n  Allow all\n</Location>\n"
                    "<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n"
                    "</Policy>\n" % self.port)
        with open(os.path.join(d, "cups-files.conf"), "w") as f:
            for k, v in (("ServerRoot", d), ("RequestRoot", d + "/spool"),
                         ("TempDir", d + "/tmp"), ("StateDir", d + "/state"),
                         ("CacheDir", d + "/cache"), ("ServerBin", d + "/bin"),
                         ("AccessLog", d + "/log/access_log"),
                         ("ErrorLog", d + "/log/error_log"),
                         ("PageLog", d + "/log/page_log"), ("Printcap", d + "/printcap")):
                f.write("%s %s\n" % (k, v))
        self.proc = subprocess.Popen(
            ["cupsd", "-f", "-c", os.path.join(d, "cupsd.conf"), "-s",
             os.path.join(d, "cups-files.conf")], stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT)
        wait_until("cupsd answers", lambda: self.proc.poll() is None and subprocess.run(
            ["lpstat", "-h", self.server, "-r"], capture_output=True, text=True).stdout
            .strip() == "scheduler is running", timeout=20)
        return self

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return False

    def add_printer(self, name):
        out = os.path.join(self.dir, "out", name)
        os.makedirs(out, exist_ok=True)
        r = subprocess.run(["lpadmin", "-h", self.server, "-p", name, "-v", "jukifile:" + out,
                            "-E"], capture_output=True, text=True)
        assert r.returncode == 0, (r.stderr, self.log())
        return out

    def log(self):
        try:
            with open(os.path.join(self.dir, "log", "error_log")) as f:
                return f.read()[-4000:]
        except FileNotFoundError:
            return ""

    def spooled(self):
        """The documents the scheduler still holds in its own spool (d<job>-<n> files)."""
        return [f for f in os.listdir(os.path.join(self.dir, "spool")) if f.startswith("d")]

    def jobs(self, name):
        """The documents printed on name, in job order."""
        out = os.path.join(self.dir, "out", name)
        files = [f for f in os.listdir(out) if f.startswith("job-")]
        return [os.path.join(out, f) for f in sorted(files, key=lambda f: int(f[4:-4]))]
