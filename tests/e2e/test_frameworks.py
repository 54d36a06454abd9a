"""The frameworks recipe of docs/WORKFLOWS.md: a pre-forking web server (the standard library's
http.server, one listening socket, worker processes under multiprocessing with the fork method)
run with `hotd run`. One save, caught by the file watcher, patches every worker."""

import os
import unittest
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from hotd_testing import HotdTestCase, kill_if_alive, wait_for

WORKERS = 3

# The handler takes a while, so that concurrent requests are taken by different workers (a worker
# busy with a request is not waiting in accept()).
SERVER = """\
import http.server, multiprocessing, os, socket, sys, time


def greeting():
    return "hello v1"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.2)
        body = ("%s from %d" % (greeting(), os.getpid())).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(listener):
    server = http.server.HTTPServer(listener.getsockname(), Handler, bind_and_activate=False)
    server.socket = listener
    server.serve_forever()


if __name__ == "__main__":
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    multiprocessing.set_start_method("fork")
    workers = [multiprocessing.Process(target=serve, args=(listener,), daemon=True) for _ in range(int(sys.argv[1]))]
    for worker in workers:
        worker.start()
    print("serving on port %d, workers %s" % (listener.getsockname()[1], " ".join(str(w.pid) for w in workers)),
          flush=True)
    sys.stdin.readline()
"""


class PreforkingHttpServer(HotdTestCase):
    def answers_by_worker(self, port):
        """Sends WORKERS concurrent requests; returns {worker pid: body}."""
        def get(_):
            with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10) as response:
                body = response.read().decode()
            return int(body.rsplit(" ", 1)[1]), body

        with ThreadPoolExecutor(WORKERS) as pool:
            return dict(pool.map(get, range(WORKERS)))

    def test_one_save_patches_every_worker(self):
        app = self.write("server.py", SERVER)
        process = self.start(app, str(WORKERS))  # watching the program's directory
        self.wait_output(process, "serving on port")
        line = [l for l in self.output(process).splitlines() if l.startswith("serving")][0]
        port = int(line.split()[3].rstrip(","))
        workers = {int(pid) for pid in line.split("workers ")[1].split()}
        for pid in workers:
            self.addCleanup(kill_if_alive, pid)
        self.assertEqual(len(workers), WORKERS)
        wait_for(lambda: workers | {process.pid} <= set(self.attached_pids()),
                 message="the server and its workers in `hotd ps` (it lists %r)" % self.attached_pids())

        seen = {}
        wait_for(lambda: seen.update(self.answers_by_worker(port)) or set(seen) == workers,
                 timeout=30, message="an answer from every worker (got %r)" % seen)
        self.assertTrue(all(body.startswith("hello v1") for body in seen.values()), seen)

        self.write("server.py", SERVER.replace('"hello v1"', '"hello v2"'))  # a save, as an editor does
        updated = {}

        def every_worker_runs_v2():
            updated.update((pid, body) for pid, body in self.answers_by_worker(port).items()
                           if body.startswith("hello v2"))
            return set(updated) == workers

        wait_for(every_worker_runs_v2, timeout=30,
                 message="every worker answering with the new code (got %r)" % updated)
        self.assertIsNone(process.poll())


if __name__ == "__main__":
    unittest.main()
