"""Shared helpers of the benchmark scripts: build and start a real
`westtek up` on a free port with a temp data dir, sign in, create an
environment. Standard library only."""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/westtek/target"))


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def ensure_tools(tools_to_packages):
    """Installs missing command-line tools from Debian's packages (as root or
    with sudo), so a benchmark runs from a clean checkout."""
    missing = sorted({pkg for tool, pkg in tools_to_packages.items() if not shutil.which(tool)})
    if not missing:
        return
    log(f"installing {' '.join(missing)} (apt)")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def ensure_uv():
    """uv on PATH (installed into the tools dir like scripts/lib.sh does)."""
    tools = os.environ.get("WESTTEK_TOOLS_DIR", os.path.expanduser("~/.cache/westtek/tools"))
    os.environ["PATH"] = f"{tools}/bin:" + os.environ["PATH"]
    if shutil.which("uv"):
        return
    log(f"installing uv into {tools}")
    subprocess.run([sys.executable, "-m", "venv", f"{tools}/uv-venv"], check=True)
    subprocess.run([f"{tools}/uv-venv/bin/pip", "install", "-q", "uv>=0.5"], check=True)
    os.makedirs(f"{tools}/bin", exist_ok=True)
    if not os.path.exists(f"{tools}/bin/uv"):
        os.symlink(f"{tools}/uv-venv/bin/uv", f"{tools}/bin/uv")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_westtek():
    ensure_uv()
    binary = os.environ.get("WESTTEK_BIN")
    if binary:
        return binary
    log("building westtek (release)")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "westtek"], cwd=ROOT, check=True,
                   env={**os.environ, "CARGO_TARGET_DIR": TARGET})
    return os.path.join(TARGET, "release", "westtek")


def http(method, url, token=None, body=None, timeout=600):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw and raw[:1] in b"{[" else raw)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw


class Platform:
    """A `westtek up` process for one benchmark run."""

    def __init__(self, binary, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="westtek-bench-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "RUST_LOG": "warn"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.log = open(os.path.join(self.dir, "westtek.log"), "w")
        self.proc = subprocess.Popen([binary, "up", "--port", str(self.port), "--data-dir", self.data,
                                      "--jupyter-idle-timeout", "0", *extra_args],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if http("GET", f"{self.url}/readyz", timeout=2)[0] == 200 and os.path.exists(os.path.join(self.data, "first-login")):
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit(f"westtek did not start; see {self.log.name}")
        with open(os.path.join(self.data, "first-login")) as f:
            token = f.read().strip()
        status, body = http("POST", f"{self.url}/api/auth/token", body={"grant_type": "one_time_token", "token": token})
        assert status == 200, body
        self.token = body["access_token"]
        self.refresh = body.get("refresh_token")

    def renew(self):
        """A fresh access token (they live 15 minutes; long benchmarks outlast one)."""
        status, body = http("POST", f"{self.url}/api/auth/token",
                            body={"grant_type": "refresh_token", "token": self.refresh})
        assert status == 200, body
        self.token = body["access_token"]
        self.refresh = body.get("refresh_token", self.refresh)

    def create_env(self, name, packages=()):
        status, acc = http("POST", f"{self.url}/api/environments", self.token,
                           {"name": name, "packages": list(packages)})
        assert status == 202, acc
        while True:
            _, job = http("GET", f"{self.url}/api/jobs/{acc['job_id']}", self.token)
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        assert job["status"] == "succeeded", job
        return acc["environment_id"]

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def summary(samples):
    s = sorted(samples)
    return {"median": statistics.median(s), "min": s[0], "max": s[-1], "n": len(s)}


def table(headers, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
