"""The pieces every benchmark case uses: a private daemon, target processes under `hotd run`,
generated modules, and statistics."""

import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from hotd_testing import RpcClient, frame  # noqa: E402,F401  (the daemon socket's JSON-RPC client)

TARGET_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "target.py")


class BenchError(Exception):
    pass


def now_ns():
    return time.monotonic_ns()


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise BenchError("timed out after %.0f s waiting for %s" % (timeout, what))


# --- statistics ---------------------------------------------------------------------------------

class Sample(object):
    """Measurements of one figure, in milliseconds unless `unit` says otherwise."""

    def __init__(self, values, unit="ms"):
        if not values:
            raise BenchError("no measurements")
        self.values = sorted(values)
        self.unit = unit

    def percentile(self, fraction):
        return self.values[min(len(self.values) - 1, int(round(fraction * (len(self.values) - 1))))]

    @property
    def median(self):
        return statistics.median(self.values)

    @property
    def p99(self):
        return self.percentile(0.99)


# --- generated modules ----------------------------------------------------------------------------

def small_module(version):
    """A typical small module: a few functions, a class, a constant; probe() returns `version`."""
    return (
        '"""A small module."""\n\nRATE = 3\n\n\n'
        "def helper(x):\n    return x * RATE\n\n\n"
        "class Cart(object):\n    def __init__(self):\n        self.items = []\n\n"
        "    def total(self):\n        return sum(helper(i) for i in self.items)\n\n\n"
        "def probe():\n    return %d\n" % version)


def large_module(version, functions=1000):
    """5,000 lines: 1,000 five-line functions; probe() sits in the middle, its body is one line."""
    parts = ['"""A large module."""\n\n\n']
    for index in range(functions):
        if index == functions // 2:
            parts.append("def probe():\n    # the line that changes\n    return %d\n\n\n" % version)
        else:
            parts.append("def f%d(x):\n    y = x + %d\n    return y * 2\n\n\n" % (index, index))
    return "".join(parts)


def shift_module(padding, functions=300):
    """300 functions, then fail(); `padding` comment lines on top shift every one of them."""
    parts = ["# padding\n" * padding, '"""300 functions."""\n\n\n']
    for index in range(functions):
        parts.append("def f%d(x):\n    return x + %d\n\n\n" % (index, index))
    parts.append("def fail():\n    raise ValueError('where')\n")
    return "".join(parts)


def shift_module_fail_line(padding, functions=300):
    return padding + 3 + 4 * functions + 2


def state_module(version, functions=20):
    """For bursts: a re-run statement (VERSION) and a function body (version()) carry the version."""
    parts = ["VERSION = %d\n\n\n" % version, "def version():\n    return %d\n\n\n" % version]
    for index in range(functions):
        parts.append("def f%d(x):\n    return x + %d\n\n\n" % (index, index))
    return "".join(parts)


def write_file(path, text):
    """Writes in place (truncate, write, close), like most editors' plain save."""
    with open(path, "w") as out:
        out.write(text)


def write_by_rename(path, text):
    """Writes a temporary file in the same directory and renames it over `path` (vim, IntelliJ)."""
    temporary = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(temporary, "w") as out:
        out.write(text)
    os.rename(temporary, path)


# --- processes ------------------------------------------------------------------------------------

def process_rss_kb(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError("no VmRSS for pid %d" % pid)


def process_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Target(object):
    """A target.py process. Reads its reports: `values[module]` is the latest value seen."""

    def __init__(self, bench, directory, modules, probe="value", interval=0.0002, ballast=0,
                 hotd=True, watch=False, idle=False):
        arguments = [TARGET_SCRIPT, "--modules", ",".join(modules), "--probe", probe,
                     "--interval", str(interval), "--ballast", str(ballast)] + (["--idle"] if idle else [])
        if hotd:
            # --watch takes several values: -q after it ends them before the program's path.
            options = ["--watch", directory] if watch else ["--no-watch"]
            command = [bench.hotd_binary, "run", "--python", bench.python] + options + ["-q"] + arguments
        else:
            command = [bench.python] + arguments
        env = dict(bench.env, PYTHONPATH=directory, PYTHONDONTWRITEBYTECODE="1")
        self.modules = modules
        self.errors = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=self.errors, cwd=directory)
        self.pid = self.process.pid  # `hotd run` execs the interpreter
        self.buffer = b""
        self.values = {}
        self.ready = False

    def _read(self, timeout):
        """Handles the complete lines that arrive within `timeout`; returns [(module, value, ns)]."""
        fd = self.process.stdout.fileno()
        if not select.select([fd], [], [], max(0.0, timeout))[0]:
            return []
        chunk = os.read(fd, 65536)
        if not chunk:
            raise BenchError("target %d exited (status %s): %s" % (self.pid, self.process.wait(), self.stderr_text()[-2000:]))
        self.buffer += chunk
        events = []
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            fields = line.decode().split()
            if fields == ["ready"]:
                self.ready = True
            elif len(fields) == 3:
                self.values[fields[0]] = fields[1]
                events.append((fields[0], fields[1], int(fields[2])))
        return events

    def wait_ready(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        while not self.ready:
            if time.monotonic() > deadline:
                raise BenchError("target %d not ready: %s" % (self.pid, self.stderr_text()[-2000:]))
            self._read(deadline - time.monotonic())

    def wait_value(self, module, value, timeout=5.0):
        """The monotonic ns at which the process first saw `module` probe to `value`, or None."""
        value = str(value)
        deadline = time.monotonic() + timeout
        while True:
            for name, seen, ns in self._read(deadline - time.monotonic()):
                if name == module and seen == value:
                    return ns
            if time.monotonic() >= deadline:
                return None

    def drain(self, timeout=0.0):
        """Every report that arrived, waiting at most `timeout` for the first."""
        events = self._read(timeout)
        while True:
            more = self._read(0.0)
            if not more:
                return events
            events += more

    def stderr_text(self):
        self.errors.seek(0)
        return self.errors.read().decode(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        self.errors.close()


class Bench(object):
    """One run of the suite: a private runtime directory (so a daemon of its own) and work space."""

    def __init__(self, hotd_binary, python, quick):
        self.hotd_binary = hotd_binary
        self.python = python
        self.quick = quick
        self.work = tempfile.mkdtemp(prefix="hotd-bench-")
        self.runtime = os.path.join(self.work, "runtime")
        self.env = dict(os.environ, HOTD_RUNTIME_DIR=self.runtime)
        self.targets = []
        self.directories = 0

    def directory(self, files=None):
        """A fresh directory with `files` ({name: text}) in it."""
        self.directories += 1
        path = os.path.join(self.work, "d%d" % self.directories)
        os.makedirs(path)
        for name, text in (files or {}).items():
            write_file(os.path.join(path, name), text)
        return path

    def hotd(self, *arguments, check=True):
        result = subprocess.run([self.hotd_binary] + list(arguments), env=self.env, capture_output=True,
                                text=True, timeout=120)
        if check and result.returncode != 0:
            raise BenchError("hotd %s: %s%s" % (" ".join(arguments), result.stdout, result.stderr))
        return result

    def start_daemon(self):
        self.hotd("ps")  # starts it on demand
        return self.daemon_pid()

    def daemon_pid(self):
        with open(os.path.join(self.runtime, "daemon.lock")) as lock:
            return int(lock.read().strip())

    def socket_path(self):
        return os.path.join(self.runtime, "daemon.sock")

    def client(self):
        return RpcClient(self.socket_path())

    def processes(self):
        client = self.client()
        try:
            return client.call("hotd/listProcesses")["result"]["processes"]
        finally:
            client.close()

    def start(self, directory, modules, **options):
        """A target, started and registered with all its modules (unless it runs without hotd)."""
        target = Target(self, directory, modules, **options)
        self.targets.append(target)
        return target

    def wait_registered(self, targets, modules):
        """Until every target reported every module: the daemon reads a file's baseline then, so a
        save before it would become the baseline instead of a change."""
        pids = set(target.pid for target in targets)

        def registered():
            ready = [entry["pid"] for entry in self.processes() if entry["pid"] in pids and
                     set(modules) <= set(name for file in entry["files"] for name in file["modules"])]
            return len(ready) == len(pids)

        wait_until(registered, 60 + len(pids), "%d processes to register %s" % (len(pids), ", ".join(modules)))

    def start_all(self, directory, modules, count=1, **options):
        targets = [self.start(directory, modules, **options) for _ in range(count)]
        for target in targets:
            target.wait_ready()
        if options.get("hotd", True):
            self.wait_registered(targets, modules)
        return targets

    def stop_targets(self, targets=None):
        for target in list(targets if targets is not None else self.targets):
            target.stop()
            self.targets.remove(target)

    def close(self):
        self.stop_targets()
        self.hotd("stop", check=False)
        shutil.rmtree(self.work, ignore_errors=True)
