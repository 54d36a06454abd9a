"""Bootstrap of `hotd run`: start the agent, then run the program as `python` itself would.

`hotd run` executes `<python> hotd_run.py (script | -m module) args...` with HOTD_AGENT_LIB and
HOTD_AGENT_CONFIG in the environment. The program must not notice the difference from a plain run:
sys.argv, sys.path, __file__, the `__main__` module (pickling of its classes, multiprocessing),
exit status, signals and stdin are those of `python script args`. Its environment keeps the two
variables and gets hotd_site first on PYTHONPATH, for the Python interpreters it starts
(hotd_site/sitecustomize.py).
"""

import os
import sys


def _start_agent():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "hotd_site"))
    import hotd_start

    del sys.path[0]
    library = os.environ.pop(hotd_start.LIBRARY_VARIABLE, None)
    config = os.environ.pop(hotd_start.CONFIG_VARIABLE, None)
    if not library or not config:
        sys.stderr.write("hotd: the bootstrap was started without an agent; use `hotd run`\n")
        sys.exit(2)
    if not hotd_start.start_agent(library, config):
        sys.stderr.write("hotd: could not start the agent; the program runs without live patching\n")
        return
    hotd_start.hand_down(library, config)
    hotd_start.wait_for_registration()


def _main_module_made(file, source):
    """The script's module is made here, not imported: give the agent the text it runs and wake it to
    report the module now rather than at the first save."""
    link = sys.modules.get("hotd_agent.link")
    if link is None or not hasattr(link, "_running_sources"):
        return
    link._running_sources[os.path.abspath(file)] = link._decode_source(source)
    link._wake_agent()


def _run_script(path, args):
    import types

    # Python 3.9+ gives __main__ an absolute __file__; sys.path[0] is the script's real directory.
    file = os.path.abspath(path) if sys.version_info >= (3, 9) else path
    sys.argv[:] = [path] + args
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    try:
        with open(path, "rb") as source_file:
            source = source_file.read()
    except OSError as error:
        sys.stderr.write("%s: can't open file %r: [Errno %d] %s\n" % (sys.executable, path, error.errno, error.strerror))
        sys.exit(2)
    code = compile(source, file, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__file__ = file
    main.__cached__ = None
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    _main_module_made(file, source)
    exec(code, main.__dict__)


def _run_module(name, args):
    import runpy

    sys.argv[:] = ["-m"] + args  # runpy puts the module's path in argv[0], as `python -m` does
    sys.path[0] = os.getcwd()
    runpy._run_module_as_main(name, alter_argv=True)


def main():
    interactive = sys.argv[1:2] == ["-i"]
    if interactive:
        del sys.argv[1]
    if len(sys.argv) < 2 or (sys.argv[1] == "-m" and len(sys.argv) < 3):
        sys.stderr.write("usage: hotd run [options] (script.py | -m module) [args...]\n")
        sys.exit(2)
    _start_agent()
    try:
        if sys.argv[1] == "-m":
            _run_module(sys.argv[2], sys.argv[3:])
        else:
            _run_script(sys.argv[1], sys.argv[2:])
    except SystemExit as error:
        if not interactive:
            raise
        _print_traceback(error)
    except BaseException as error:
        if not interactive:
            _exit_like_python(error)
        _print_traceback(error)
    if interactive:
        _interact()


def _interact():
    """`python -i`: a REPL in the program's namespace once it ended, while saves keep patching."""
    import code

    try:
        import readline  # noqa: F401  line editing and history, where available
    except ImportError:
        pass
    class Console(code.InteractiveConsole):
        def raw_input(self, prompt=""):
            if sys.stdin.isatty():
                return input(prompt)  # readline needs the prompt for line editing
            sys.stderr.write(prompt)  # as python -i: prompts on stderr, output alone on stdout
            sys.stderr.flush()
            return input()

    Console(sys.modules["__main__"].__dict__).interact(
        banner="hotd: the program ended; its code is still live-patched (Ctrl+D quits)", exitmsg="")
    sys.exit(0)


def _print_traceback(error):
    """Print the traceback as the interpreter would, without the bootstrap's frames."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    error.__traceback__ = tb  # the default hook prints the exception's own traceback, not its argument
    sys.excepthook(type(error), error, tb)


def _exit_like_python(error):
    """Print the traceback and exit as the interpreter would."""
    _print_traceback(error)
    if isinstance(error, KeyboardInterrupt):
        import signal

        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    sys.exit(1)


if __name__ == "__main__":
    main()
