"""Shared helpers for end-to-end tests: a private runtime directory, the real `hotd` binary, real
Python processes under `hotd run`, and a raw JSON-RPC client for the daemon socket."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HOTD = os.environ.get("HOTD_BINARY", "")
PYTHON = os.environ.get("HOTD_TEST_PYTHON", "/usr/bin/python3")


def wait_for(predicate, timeout=10.0, interval=0.02, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, message))


def pyenv_python(series):
    """bin/python3 of the newest pyenv CPython `series`.N, or None when pyenv has none: the only case in
    which a test may skip for it (an installed interpreter that does not run makes the test fail)."""
    versions = os.path.join(os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv"), "versions")
    prefix = series + "."
    micros = [int(name[len(prefix):]) for name in (os.listdir(versions) if os.path.isdir(versions) else ())
              if name.startswith(prefix) and name[len(prefix):].isdigit()]
    return os.path.join(versions, "%s.%d" % (series, max(micros)), "bin", "python3") if micros else None


def kill_if_alive(pid):
    """For cleanups: a process the test started indirectly (a worker, a forked child) may be gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def process_state(pid):
    """The state of `pid` in /proc (`R` running, `S` asleep in a system call, `T` stopped, `Z` a zombie),
    or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def process_gone(pid):
    """Whether `pid` has exited: no such process, or a zombie nobody reaped yet (a daemon's parent is
    init, which in a container may never reap it)."""
    return process_state(pid) in (None, "Z")


def frame(message):
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class JsonRpcPeer(object):
    """Requests and notifications over a subclass's `send(message)`; ids count up from its `next_id`."""

    def request(self, method, params=None):
        request_id = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": {} if params is None else params})
        return request_id

    def notify(self, method, params=None):
        self.send({"jsonrpc": "2.0", "method": method, "params": {} if params is None else params})


class RpcClient(object):
    """A raw client on the daemon socket, to send requests without waiting (ordering tests); or on a
    connected `sock` (an agent stream over TCP)."""

    def __init__(self, path=None, sock=None):
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
        self.sock = sock
        self.buffer = b""
        self.next_id = 1

    def send(self, method, params=None):
        request_id = self.next_id
        self.next_id += 1
        self.sock.sendall(frame({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}))
        return request_id

    def receive(self, timeout=10.0):
        self.sock.settimeout(timeout)
        while True:
            header_end = self.buffer.find(b"\r\n\r\n")
            if header_end >= 0:
                length = int(self.buffer[:header_end].split(b":")[1])
                if len(self.buffer) >= header_end + 4 + length:
                    body = self.buffer[header_end + 4:header_end + 4 + length]
                    self.buffer = self.buffer[header_end + 4 + length:]
                    return json.loads(body)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the daemon closed the connection")
            self.buffer += chunk

    def call(self, method, params=None, timeout=10.0):
        return self.call_seeing(method, params, timeout)[1]

    def call_seeing(self, method, params=None, timeout=10.0):
        """(every message that came before the reply, the reply): the daemon answers each connection in
        order, so what it sent this peer before the reply is all it sent until then."""
        request_id = self.send(method, params)
        before = []
        while True:
            message = self.receive(timeout)
            if message.get("id") == request_id and "method" not in message:
                return before, message
            before.append(message)

    def notify(self, method, params=None):
        self.sock.sendall(frame({"jsonrpc": "2.0", "method": method, "params": params or {}}))

    def reply(self, request_id, result):
        self.sock.sendall(frame({"jsonrpc": "2.0", "id": request_id, "result": result}))

    def close(self):
        self.sock.close()


class HotdTestCase(unittest.TestCase):
    """Each test gets its own runtime directory (so its own daemon) and work directory."""

    def setUp(self):
        if not HOTD or not os.access(HOTD, os.X_OK):
            self.fail("HOTD_BINARY must point at the built hotd binary")
        self.work = tempfile.mkdtemp(prefix="hotd-e2e-")
        self.runtime = os.path.join(self.work, "runtime")
        self.env = dict(os.environ, HOTD_RUNTIME_DIR=self.runtime)
        self.processes = []

    def tearDown(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
            for stream in (process.stdin, process.out_file, process.err_file):
                if stream:
                    stream.close()
        self.stop_daemon()
        shutil.rmtree(self.work, ignore_errors=True)

    # --- the binary ---------------------------------------------------------------------------

    def hotd(self, *args, check=True, timeout=30, input=None):
        result = subprocess.run([HOTD] + list(args), env=self.env, capture_output=True, text=True,
                                timeout=timeout, input=input)
        if check and result.returncode != 0:
            self.fail("hotd %s exited %d\nstdout: %s\nstderr: %s" % (" ".join(args), result.returncode,
                                                                   result.stdout, result.stderr))
        return result

    def daemon_pid(self):
        try:
            with open(os.path.join(self.runtime, "daemon.lock")) as lock:
                return int(lock.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def kill_daemon(self):
        pid = self.daemon_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def stop_daemon(self):
        """For cleanups: `hotd stop`, and a daemon still there after it (a hung one) is killed. One that is
        exiting is let finish: killed mid-exit, a sanitized daemon's leak check reports a false error."""
        pid = self.daemon_pid()
        self.hotd("stop", check=False)
        if pid:
            try:
                wait_for(lambda: process_gone(pid), timeout=10, message="the stopped daemon (pid %d) to exit" % pid)
            except AssertionError:
                kill_if_alive(pid)

    def daemon_log(self):
        try:
            with open(os.path.join(self.runtime, "daemon.log")) as log:
                return log.read()
        except OSError:
            return ""

    # --- programs under hotd run --------------------------------------------------------------

    def write(self, name, text):
        path = os.path.join(self.work, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as out:
            out.write(text)
        os.replace(path + ".tmp", path)
        return path

    def start(self, script, *args, options=(), python=None, cwd=None):
        out = open(os.path.join(self.work, "out-%d.txt" % len(self.processes)), "w+")
        err = open(os.path.join(self.work, "err-%d.txt" % len(self.processes)), "w+")
        command = [HOTD, "run", "--python", python or PYTHON] + list(options) + [script] + list(args)
        process = subprocess.Popen(command, env=self.env, stdout=out, stderr=err, stdin=subprocess.PIPE, cwd=cwd)
        process.out_path, process.err_path = out.name, err.name
        process.out_file, process.err_file = out, err
        self.processes.append(process)
        return process

    @staticmethod
    def output(process):
        with open(process.out_path) as out:
            return out.read()

    @staticmethod
    def errors(process):
        with open(process.err_path) as err:
            return err.read()

    def attached_pids(self):
        result = self.hotd("ps", "--json", check=False)
        if result.returncode != 0:
            return []
        return [process["pid"] for process in json.loads(result.stdout)["processes"]]

    def known_files(self, pid):
        """{file: [module names]} the daemon knows process `pid` runs."""
        result = self.hotd("ps", "--json", check=False)
        for process in json.loads(result.stdout)["processes"] if result.returncode == 0 else []:
            if process["pid"] == pid:
                return {entry["file"]: entry["modules"] for entry in process["files"]}
        return {}

    def wait_attached(self, process, files=1):
        def ready():
            listing = self.hotd("ps", "--json", check=False)
            if listing.returncode != 0:
                return False
            for entry in json.loads(listing.stdout)["processes"]:
                if entry["pid"] == process.pid and len(entry["files"]) >= files:
                    return True
            return False

        wait_for(ready, message="process %d to register with the daemon" % process.pid)

    def next_lines(self, process, since, count=2):
        """The next `count` whole lines `process` prints after the first `since` characters of its output
        (the line it was printing then is left out: it may have been computed before), once printed."""
        def lines():
            whole = self.output(process)[since:].split("\n")[1:-1]
            return whole[:count] if len(whole) >= count else None

        return wait_for(lines, message="%d more lines from process %d" % (count, process.pid))

    def saves(self):
        """The saves in `hotd log`, oldest first."""
        entries = json.loads(self.hotd("log", "--json").stdout)["entries"]
        return [entry for entry in entries if entry["origin"] == "save"]

    def wait_output(self, process, text, timeout=10.0):
        try:
            wait_for(lambda: text in self.output(process), timeout=timeout, message="%r in the output of %d" % (text, process.pid))
        except AssertionError as error:  # what it printed by then, and its errors
            raise AssertionError("%s (it printed: %r; errors: %r)" % (
                error, self.output(process)[-300:], self.errors(process)[-1500:])) from None
