"""A grading worker: runs submissions' code in confined child processes.

Started by :mod:`vizlib.exercises.grade` (one worker per core). It imports torch and
the kernel machinery once, then, for each job it reads from stdin, forks:

- one child per exercise, which runs only that exercise's cell and calls the reader's
  function on the instructor's inputs, sending back the return values (judged by the
  grader, not here). The inputs go one case at a time, each request with a fresh random
  nonce drawn here after the child started; only an answer naming the nonce of the
  request outstanding is taken, so a line the reader's code writes to the report pipe
  (a "forged" result) is ignored and counted, never scored: the only way to answer a case
  is to be asked it, and then the answer is the reader's answer however it was sent;
- one child that becomes a fresh IPython kernel, in which the whole notebook runs top to
  bottom (to report whether it runs).

Every child is confined first (:func:`vizlib.exercises.sandbox.confine`: its own folder,
memory, CPU and file limits, Landlock), has its output captured through a pipe with a
size cap, and is killed with its whole process group at its time limit. The worker
answers one JSON line per job on stdout. It runs no student code itself.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import sys
import time

PRELOAD = (
    "numpy",
    "torch",
    "torchvision",
    "matplotlib",
    "vizlib",
    "vizlib.boxes",
    "vizlib.exercises",
    "vizlib.exercises.wire",
    "IPython",
    "ipykernel.kernelapp",
    "jupyter_client",
    "zmq",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MAX_RESULT = 32 << 20  # bytes of results a check child may send


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional library only costs time later
            pass
    try:
        import torch

        torch.set_num_threads(1)
    except Exception:  # noqa: BLE001
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _keep_fds(fds: list[int]) -> list[int]:
    """Move ``fds`` to 3, 4, ... and close every other descriptor above 2."""
    moved = [os.dup(fd) for fd in fds]
    for target, fd in enumerate(moved, start=3):
        os.dup2(fd, target)
    os.closerange(3 + len(fds), os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 4096)
    return list(range(3, 3 + len(fds)))


def _describe_exit(status: int | None) -> str:
    if status is None:
        return "still running"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"was killed by {name}"
    return f"exited with code {os.WEXITSTATUS(status)}"


def _kill_group(pid: int) -> None:
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass


class _NoIPython:
    """Stands in for ``get_ipython()`` when an exercise cell runs outside a kernel: magics do nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


# ---------------------------------------------------------------- exercise checks


def _read_request(fd: int, buffer: bytearray) -> dict | None:
    """The next request line from the worker (None when it closed the pipe)."""
    while b"\n" not in buffer:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return json.loads(line)


def _check_child(
    ex: dict, res_w: int, cmd_r: int, out_w: int, ev_fd: int, work: str, limits: dict, env: dict
):
    """In the forked child: confine, run the exercise cell, answer each case asked for."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(out_w, 2)
    res, cmd, events = _keep_fds([res_w, cmd_r, ev_fd])
    dumps, write_all = json.dumps, _write_all
    ex = {k: v for k, v in ex.items() if k != "cases"}  # the inputs come one by one

    def send(obj) -> None:
        write_all(res, (dumps(obj) + "\n").encode())

    from vizlib.exercises.checking import Case, run_case
    from vizlib.exercises.sandbox import confine
    from vizlib.exercises.wire import decode, encode

    confine(
        work,
        memory_mb=limits["memory_mb"],
        cpu_seconds=limits["check_timeout"] + 5,
        events_fd=events,
        env=env,
        isolate=True,  # and no network at all: it talks to the grader through pipes
    )
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(ex["source"])
    except Exception:  # noqa: BLE001 - leave it to compile() to report
        source = ex["source"]
    namespace = {"__name__": "__main__", "get_ipython": _NoIPython}
    # the reader's helpers and imports from earlier cells (chosen by the grader): one that
    # fails is left out, as a NameError in the function then says what is missing
    for helper in ex.get("helpers") or []:
        try:
            exec(compile(helper, "<earlier cell>", "exec"), namespace)  # noqa: S102
        except BaseException:  # noqa: BLE001, S110
            pass
    try:
        code = compile(source, "<exercise cell>", "exec")
    except SyntaxError as exc:
        send(
            {
                "load_error": f"SyntaxError: {exc.msg} (line {exc.lineno} of your cell)",
                "types": ["SyntaxError"],
            }
        )
        os._exit(0)
    try:
        exec(code, namespace)  # noqa: S102 - confined child: this is what it is for
    except BaseException as exc:  # noqa: BLE001
        import traceback

        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<exercise cell>"
        ]
        where = f" (line {frames[-1].lineno} of your cell)" if frames else ""
        send(
            {
                "load_error": f"{type(exc).__name__}: {exc}"[:500] + where,
                "types": [c.__name__ for c in type(exc).__mro__],
            }
        )
        os._exit(0)
    function = namespace.get(ex["function"])
    if not callable(function):
        send(
            {
                "load_error": f"the exercise cell does not define a function {ex['function']}()",
                "types": [],
            }
        )
        os._exit(0)
    send({"loaded": True})
    buffer = bytearray()
    while True:
        try:
            request = _read_request(cmd, buffer)
        except (OSError, ValueError):
            request = None
        if not isinstance(request, dict):
            os._exit(0)  # every case asked and answered: the worker closed the pipe
        answer = {"case": request.get("case"), "nonce": request.get("nonce")}
        try:
            out = run_case(function, Case(str(answer["case"]), decode(request["args"])))
            answer.update(
                value=encode(out.value),
                error=out.error,
                types=list(out.error_types),
                line=out.line,
                args_after=encode(out.args_after),
            )
        except BaseException as exc:  # noqa: BLE001 - e.g. a KeyboardInterrupt raised on purpose
            answer.update(
                value=None,
                error=f"{type(exc).__name__}: {exc}"[:500],
                types=[c.__name__ for c in type(exc).__mro__],
                line=None,
                args_after=None,
            )
        send(answer)


def _changed_argument(before, after) -> int | None:
    """The index of the first argument that differs between the encoded arguments of a case
    and those the child sent back after the call (exact comparison), or None."""
    b = before.get("__tuple__") if isinstance(before, dict) else None
    a = after.get("__tuple__") if isinstance(after, dict) else None
    if not isinstance(b, list) or not isinstance(a, list):
        return None
    for k, (x, y) in enumerate(zip(b, a, strict=False)):
        if x != y:
            return k
    return None


def _serve_cases(
    pid: int,
    fds: dict[str, int],
    cases: list,
    hidden_from: int,
    deadline: float,
    max_output: int,
) -> dict:
    """Ask a check child for each case in turn and take only the answers to what was asked.

    The child first says ``loaded`` (or ``load_error``); then each case goes out with a
    fresh nonce, and the one line answering it must carry that nonce and the case's
    index. Anything else on the report pipe is counted in ``ignored`` and dropped. What the
    child prints is kept (8 KB) only until the first hidden case is asked, so that its
    inputs never reach the reader's feedback; all of it counts against ``max_output``.
    """
    res_r, cmd_w, out_r = fds["results"], fds["requests"], fds["output"]
    os.set_blocking(cmd_w, False)
    accepted: list[dict] = []
    ignored = 0
    pending: tuple[int, str] | None = None
    outbox = bytearray()
    lines = bytearray()
    output = bytearray()
    totals = {"results": 0, "output": 0}
    keep_output, finished, stage = True, False, "load"
    status, exit_status = None, None
    open_fds = {res_r: "results", out_r: "output"}

    def ask(i: int) -> None:
        nonlocal pending, keep_output, finished
        if i >= len(cases):
            pending, finished = None, True
            return
        if i >= hidden_from:
            keep_output = False
        nonce = os.urandom(16).hex()
        pending = (i, nonce)
        outbox.extend((json.dumps({"case": i, "nonce": nonce, "args": cases[i]}) + "\n").encode())

    def take(line: bytes) -> None:
        nonlocal stage, ignored
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if not isinstance(item, dict):
            ignored += 1
        elif stage == "load" and "load_error" in item:
            accepted.append({"load_error": item["load_error"], "types": item.get("types")})
            stage = "ended"
        elif stage == "load" and item.get("loaded") is True:
            accepted.append({"loaded": True})
            stage = "cases"
            ask(0)
        elif (
            stage == "cases"
            and pending is not None
            and item.get("nonce") == pending[1]
            and item.get("case") == pending[0]
        ):
            item.pop("nonce")
            # whether the call changed an input in place, decided here: the inputs (hidden
            # ones too) never travel back, so no later child of this job finds them
            item["changed"] = _changed_argument(cases[pending[0]], item.pop("args_after", None))
            accepted.append(item)
            ask(pending[0] + 1)
        else:
            ignored += 1

    while open_fds and not finished and stage != "ended":
        left = deadline - time.monotonic()
        if left <= 0:
            status = "timeout"
            break
        wait = min(left, 0.2 if exit_status is not None else 1.0)
        writers = [cmd_w] if outbox else []
        ready, writable, _ = select.select(list(open_fds), writers, [], wait)
        if writable:
            try:
                del outbox[: os.write(cmd_w, outbox)]
            except BlockingIOError:
                pass
            except OSError:  # the child closed its end: it will not answer
                outbox.clear()
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            name = open_fds[fd]
            if not chunk:
                del open_fds[fd]
                continue
            totals[name] += len(chunk)
            if name == "output":
                if keep_output and len(output) < 8192:
                    output += chunk[: 8192 - len(output)]
                continue
            lines.extend(chunk)
            start = 0  # split once per chunk: a flood of short lines costs linear time
            while not finished and stage != "ended":
                end = lines.find(b"\n", start)
                if end < 0:
                    break
                take(bytes(lines[start:end]))
                start = end + 1
            del lines[:start]
        if totals["output"] > max_output:
            status = "flood"
            break
        if totals["results"] > _MAX_RESULT:
            status = "too_large"
            break
        if exit_status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                exit_status = st
        elif not ready:
            break  # the child has exited; a descendant it left behind keeps the pipe open
    _kill_group(pid)
    if exit_status is None:
        _, exit_status = os.waitpid(pid, 0)
    for fd in fds.values():
        os.close(fd)
    if finished:
        accepted.append({"done": True})
    return {
        "status": status,
        "exit": exit_status,
        "lines": accepted,
        "ignored": ignored,
        "output": bytes(output),
        "output_bytes": totals["output"],
    }


def _read_events(path: str) -> list[dict]:
    events = []
    try:
        with open(path, "rb") as f:
            raw = f.read(65536)
    except OSError:
        return events
    for line in raw.decode("utf-8", "replace").splitlines()[:50]:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            events.append({"event": str(item.get("event", ""))[:40], "path": item["path"][:300]})
    return events


def run_check(ex: dict, folder: str, limits: dict, env: dict) -> dict:
    """Run one exercise cell in a confined child and ask it each case of ``ex["cases"]``
    (the encoded arguments; those from ``ex["hidden_from"]`` on are hidden); the raw
    answers, for the grader to judge."""
    work = os.path.join(folder, "work")
    os.makedirs(work, exist_ok=True)
    events_path = os.path.join(folder, "events.jsonl")
    ev_fd = os.open(events_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    res_r, res_w = os.pipe()
    cmd_r, cmd_w = os.pipe()
    out_r, out_w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        try:
            for fd in (res_r, cmd_w, out_r):
                os.close(fd)
            ex = _forget_job(ex)
            _check_child(ex, res_w, cmd_r, out_w, ev_fd, work, limits, env)
        finally:
            os._exit(70)
    for fd in (res_w, cmd_r, out_w, ev_fd):
        os.close(fd)
    cases = ex.get("cases") or []
    served = _serve_cases(
        pid,
        {"results": res_r, "requests": cmd_w, "output": out_r},
        cases,
        int(ex.get("hidden_from", len(cases))),
        start + limits["check_timeout"],
        limits["max_output"],
    )
    return {
        "status": served["status"],
        "exit": _describe_exit(served["exit"]),
        "clean_exit": served["exit"] == 0,
        "lines": served["lines"],
        "ignored": served["ignored"],
        "output": served["output"].decode("utf-8", "replace")[:4000],
        "output_bytes": served["output_bytes"],
        "seconds": round(time.monotonic() - start, 2),
        "events": _read_events(events_path),
    }


# ---------------------------------------------------------------- the whole notebook


def _kernel_child(conn: str, ev_fd: int, work: str, limits: dict, env: dict, seconds: int):
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    (events,) = _keep_fds([ev_fd])
    from vizlib.exercises.sandbox import confine

    with open(conn, encoding="utf-8") as f:
        info = json.load(f)
    ports = tuple(
        int(info[k]) for k in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
    )
    confine(
        work,
        memory_mb=limits["memory_mb"],
        cpu_seconds=seconds + 10,
        extra_read=(conn,),
        events_fd=events,
        env=env,
        isolate=True,
        # the kernel's channel to the grader is TCP: its own five ports, nothing else
        private_network=False,
        tcp_bind_ports=ports,
    )
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(["-f", conn, "--HistoryManager.enabled=False", "--IPKernelApp.quiet=True"])
    app.start()


# Figures count against a cap this many times the text cap: a lesson's plots and widgets
# come to a few MB (the R-CNN lesson's to 2.2 MB), and none of it is kept by the grader.
FIGURE_FACTOR = 32


def _content_size(content: dict) -> tuple[int, int]:
    """(text, figures): the bytes of one output message, printed text apart from the
    rich display data (images, HTML, widget state) a lesson's figures send."""
    text = figures = 0
    for key in ("text", "data", "traceback", "evalue"):
        value = content.get(key)
        if isinstance(value, str):
            text += len(value)
        elif isinstance(value, dict):
            for mime, v in value.items():
                size = len(v) if isinstance(v, str) else len(json.dumps(v))
                if mime == "text/plain":
                    text += size
                else:
                    figures += size
        elif isinstance(value, list):
            text += sum(len(str(v)) for v in value)
    return text, figures


def run_notebook(nb: dict, folder: str, limits: dict, env: dict) -> dict:
    """Run every code cell of the notebook in a fresh confined kernel; how far it got and why."""
    import queue

    import zmq
    from jupyter_client import BlockingKernelClient
    from jupyter_client.connect import write_connection_file

    work = os.path.join(folder, "work")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, nb["name"]), "w", encoding="utf-8") as f:
        f.write(nb["text"])  # the notebook sits in its folder, as it would for the student
    conn = os.path.join(folder, "kernel.json")
    write_connection_file(conn, ip="127.0.0.1", key=os.urandom(32).hex().encode())
    events_path = os.path.join(folder, "events.jsonl")
    ev_fd = os.open(events_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    seconds = limits["timeout"]
    start = time.monotonic()
    deadline = start + seconds
    pid = os.fork()
    if pid == 0:
        try:
            _forget_job()
            _kernel_child(conn, ev_fd, work, limits, env, seconds)
        finally:
            os._exit(70)
    os.close(ev_fd)
    context = zmq.Context()
    kc = BlockingKernelClient(connection_file=conn, context=context)
    kc.load_connection_file()
    kc.start_channels(hb=False)
    report = {"status": "ok", "cell": None, "error": "", "cells_run": 0}
    exit_status = None
    output_bytes = figure_bytes = 0

    def alive() -> bool:
        nonlocal exit_status
        if exit_status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                exit_status = st
        return exit_status is None

    def fail(status: str, cell: int | None, error: str) -> None:
        report.update(status=status, cell=cell, error=error)

    try:
        # Wait for the kernel: ask for kernel_info until it answers on the shell channel
        # AND its status reaches us on iopub. A zmq subscriber misses what is published
        # before it has connected ("slow joiner"); without the iopub half, the first
        # cell's 'idle' could be lost and a correct notebook would time out.
        ready = False
        asked: set[str] = set()
        answered = heard = False
        while not ready and alive() and time.monotonic() < deadline:
            asked.add(kc.kernel_info())
            until = time.monotonic() + 1
            while not ready and time.monotonic() < until and alive():
                for get in (kc.get_shell_msg, kc.get_iopub_msg):
                    try:
                        msg = get(timeout=0.05)
                    except queue.Empty:
                        continue
                    if msg["parent_header"].get("msg_id") in asked:
                        if get == kc.get_shell_msg:
                            answered = True
                        else:
                            heard = True
                ready = answered and heard
        if not ready:
            fail(
                "died" if exit_status is not None else "timeout",
                None,
                f"the kernel did not start ({_describe_exit(exit_status)})",
            )
        for index, source in nb["cells"] if ready else []:
            msg_id = kc.execute(source, allow_stdin=False, stop_on_error=True)
            idle, reply = False, None
            while not (idle and reply):
                if time.monotonic() > deadline:
                    fail("timeout", index, f"timed out after {seconds} s")
                    break
                if not alive():
                    fail("died", index, f"the kernel died ({_describe_exit(exit_status)})")
                    break
                try:
                    msg = kc.get_iopub_msg(timeout=0.05)
                except queue.Empty:
                    msg = None
                if msg and msg["parent_header"].get("msg_id") == msg_id:
                    kind, content = msg["msg_type"], msg["content"]
                    text, figures = _content_size(content)
                    output_bytes += text
                    figure_bytes += figures
                    if kind == "status" and content.get("execution_state") == "idle":
                        idle = True
                    elif kind == "error":
                        tb = _ANSI.sub("", "\n".join(content.get("traceback", [])))
                        report["traceback"] = "\n".join(tb.splitlines()[-25:])[:4000]
                if output_bytes > limits["max_output"]:
                    fail("flood", index, f"printed more than {limits['max_output'] // 1024} KB")
                    break
                if figure_bytes > FIGURE_FACTOR * limits["max_output"]:
                    cap = FIGURE_FACTOR * limits["max_output"] // 1024
                    fail("flood", index, f"displayed more than {cap} KB of figures")
                    break
                if reply is None:
                    try:
                        shell = kc.get_shell_msg(timeout=0)
                    except queue.Empty:
                        shell = None
                    if shell and shell["parent_header"].get("msg_id") == msg_id:
                        reply = shell["content"]
            if report["status"] != "ok":
                break
            report["cells_run"] += 1
            if reply.get("status") == "error":
                ename, evalue = reply.get("ename", "Error"), reply.get("evalue", "")
                memory = ename == "MemoryError" or "can't allocate memory" in evalue
                fail("memory" if memory else "error", index, f"{ename}: {evalue}"[:500])
                break
    finally:
        _kill_group(pid)
        if exit_status is None:
            _, exit_status = os.waitpid(pid, 0)
        kc.stop_channels()
        context.destroy(linger=0)
    report["seconds"] = round(time.monotonic() - start, 2)
    report["events"] = _read_events(events_path)
    return report


# ---------------------------------------------------------------- the job loop


def _children() -> set[int]:
    found: set[int] = set()
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as f:
                found.update(int(p) for p in f.read().split())
    except OSError:
        pass
    return found


def _reap_descendants() -> None:
    """Kill every process this job process adopted (it is their subreaper), then reap them."""
    for _ in range(100):  # each round also catches the orphans the last one made
        children = _children()
        if not children:
            return
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for _ in children:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return


# The job this process grades and its results so far, so that a child can forget them.
_JOB: dict = {}
_RESULTS: dict = {}


def _forget_job(ex: dict | None = None) -> dict | None:
    """In a child, before any student code: drop (from its own copy of the memory) every
    exercise's cases and the results of the checks so far (the values the functions
    returned), so that the code finds no hidden input in the objects it can reach (frames,
    the garbage collector's list), nor a function's answers to hidden cases; a check child
    receives each case's input when it is asked. Returns ``ex`` without its cases."""
    import gc

    for other in _JOB.get("exercises", []):
        other.pop("cases", None)
    for block in _RESULTS.get("out", {}).get("exercises", {}).values():
        block.clear()
    gc.collect()
    return None if ex is None else {k: v for k, v in ex.items() if k != "cases"}


def run_job(job: dict) -> dict:
    """Grade one submission: each exercise in its own child, then the whole notebook.

    The job process is the subreaper of everything its children start, so a submission
    that leaves a process behind (a daemon, a double fork) has it killed at the end.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    root = job["folder"]
    limits, env = job["limits"], job["env"]
    out = {"exercises": {}, "notebook": None}
    _JOB.clear()
    _JOB.update(job)
    _RESULTS.clear()
    _RESULTS.update(out=out)
    try:
        for k, ex in enumerate(job["exercises"]):
            out["exercises"][ex["id"]] = run_check(ex, os.path.join(root, f"ex{k}"), limits, env)
        if job.get("notebook"):
            out["notebook"] = run_notebook(job["notebook"], os.path.join(root, "nb"), limits, env)
    finally:
        if sys.platform.startswith("linux"):
            _reap_descendants()
        shutil.rmtree(root, ignore_errors=True)
    return out


def _read_line(fd: int) -> bytes | None:
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return bytes(data) or None
        data += chunk
    return bytes(data)


def main() -> None:
    """Preload, then serve jobs: each in a fresh fork that reads its job itself.

    The process that forks never holds a submission, so no child can find another
    student's notebook in the memory it inherits.
    """
    report_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints of libraries must not mix with the reports
    _preload()
    _write_all(report_fd, b'{"ready": true}\n')
    while True:
        pid = os.fork()
        if pid == 0:
            try:
                line = _read_line(0)
                if line is None:
                    os._exit(3)  # the grader closed our stdin: no more jobs
                try:
                    job = json.loads(line)
                    del line  # its text holds every case's inputs: no reference may remain
                    result = run_job(job)
                except Exception as exc:  # noqa: BLE001 - report it, keep serving
                    result = {"worker_error": f"{type(exc).__name__}: {exc}"}
                _write_all(report_fd, (json.dumps(result) + "\n").encode())
                os._exit(0)
            finally:
                os._exit(4)
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3:
            return
        if status != 0:
            failure = {"worker_error": f"the job process {_describe_exit(status)}"}
            _write_all(report_fd, (json.dumps(failure) + "\n").encode())


if __name__ == "__main__":
    main()
