"""Target processes for the injector tests. Runs on Python 3.6 to 3.13 and 2.7 (for the refusals).

    python targets.py MODE [--nondumpable]

Each mode prints "ready [detail]" once set up, then works until SIGTERM, which prints
"bye <iterations>" and exits 0. SIGUSR1 prints "status <iterations> <ok>": the target checks its
own invariants (results of its computations, the main thread, the signal handler still working), so
a status line after an injection says the target behaves as before.
"""
from __future__ import print_function

import os
import select
import signal
import socket
import sys
import threading
import time

iterations = [0]
problems = []


def say(*words):
    print(*words)
    sys.stdout.flush()


def on_status(signum, frame):
    main_ok = threading.current_thread() is threading.main_thread() if hasattr(threading, "main_thread") else True
    say("status", iterations[0], "ok" if main_ok and not problems else "broken:" + ";".join(problems))


def on_term(signum, frame):
    say("bye", iterations[0])
    sys.exit(0 if not problems else 3)


def check(condition, what):
    if not condition and what not in problems:
        problems.append(what)


def compute():
    # A fixed computation whose result a corrupted register or FPU state would change.
    total = sum(i * i for i in range(2000))
    ratio = sum(1.0 / (i + 1) for i in range(200))
    check(total == 2664667000, "integer result")
    check(abs(ratio - 5.878030948121446) < 1e-12, "float result")


def allocate(seed):
    # Many sizes: small objects (pymalloc), medium (malloc arenas) and large (mmap/munmap).
    blobs = [bytearray(((seed + k) % 251,)) * (1 << (k % 22)) for k in range(24)]
    table = {str(k): list(range(k % 97)) for k in range(300)}
    # Objects above 512 bytes bypass pymalloc: every one is a libc malloc and free.
    chunks = [b"m" * (513 + (k * 37) % 20000) for k in range(1500)]
    check(sum(len(c) for c in chunks) == sum(513 + (k * 37) % 20000 for k in range(1500)), "chunk sizes")
    check(all(len(b) == 1 << (k % 22) and b[-1] == (seed + k) % 251 for k, b in enumerate(blobs)), "blob contents")
    check(sum(len(v) for v in table.values()) == sum(k % 97 for k in range(300)), "dict contents")


def idle():
    say("ready")
    while True:
        time.sleep(0.02)
        iterations[0] += 1


def busy():
    say("ready")
    while True:
        compute()
        iterations[0] += 1


def alloc():
    say("ready")
    while True:
        allocate(iterations[0])
        iterations[0] += 1


def worker(kind):
    n = 0
    while True:
        if kind == 0:
            compute()
        elif kind == 1:
            allocate(n)
        else:
            time.sleep(0.005)
        n += 1


def threads():
    for kind in range(3):
        t = threading.Thread(target=worker, args=(kind,))
        t.daemon = True
        t.start()
    say("ready")
    while True:
        allocate(iterations[0])
        compute()
        iterations[0] += 1


def read_input():
    say("ready")
    line = sys.stdin.readline() if sys.version_info[0] < 3 else input()
    say("got", line)
    iterations[0] += 1
    on_term(None, None)


def serve(use_select):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    say("ready", server.getsockname()[1])
    while True:
        if use_select:
            select.select([server], [], [])
        conn, _ = server.accept()
        request = conn.makefile("r").readline().strip()
        conn.sendall(("pong " + request + "\n").encode())
        conn.close()
        iterations[0] += 1


def libc_spin():
    # The main thread spends seconds inside libc (qsort calling strcmp): no safe point there.
    import ctypes
    libc = ctypes.CDLL(None)
    n = 8000000
    buf = ctypes.create_string_buffer(os.urandom(n).replace(b"\0", b"\1"), n + 1)
    say("ready")
    libc.qsort(buf, n, 1, libc.strcmp)
    iterations[0] += 1
    say("sorted")
    idle()


MODES = {
    "idle": idle,
    "busy": busy,
    "alloc": alloc,
    "threads": threads,
    "input": read_input,
    "select": lambda: serve(True),
    "accept": lambda: serve(False),
    "libc_spin": libc_spin,
}

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGUSR1, on_status)
    if "--nondumpable" in sys.argv:
        import ctypes
        PR_SET_DUMPABLE = 4
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    MODES[sys.argv[1]]()
