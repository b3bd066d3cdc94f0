"""The grader's sandbox (vizlib.exercises.sandbox.confine): each rule is proven by a
process that tries to break it, and what cannot be enforced is said, never skipped.

Each probe is a fresh Python process that confines itself, then tries what a hostile
submission tried (issue 15): reach the network and a UNIX socket, read the grader's
environment and /proc, leave files in /dev/shm, start many processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vizlib.exercises import sandbox

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

PROBE = textwrap.dedent(
    """
    import json, os, socket, sys
    from vizlib.exercises.sandbox import confine

    args = json.loads(sys.argv[1])
    grader = os.getppid()
    info = confine(args["work"], memory_mb=1024, cpu_seconds=60, **args["confine"])
    out = {"rules": info["rules"], "env": sorted(os.environ)}

    def attempt(name, f):
        try:
            out[name] = f()
        except Exception as exc:
            out[name] = "denied: " + type(exc).__name__

    def connect_tcp():
        socket.create_connection(("127.0.0.1", args["tcp_port"]), timeout=2).close()
        return "allowed"

    def send_udp():
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", args["udp_port"]))
        return "allowed"

    def connect_unix():
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        s.connect(args["unix_path"])
        return "allowed"

    def bind(port):
        s = socket.socket()
        s.bind(("127.0.0.1", port))
        return "allowed"

    def leave_file():
        with open("/dev/shm/" + args["shm_name"], "wb") as f:
            f.write(b"x" * 4096)
        return "allowed"

    def fork_many():
        kids = []
        try:
            for _ in range(args["forks"]):
                pid = os.fork()
                if pid == 0:  # alive until the parent is done forking
                    os.close(w)
                    os.read(r, 1)
                    os._exit(0)
                kids.append(pid)
        finally:
            os.close(w)
            for pid in kids:
                os.waitpid(pid, 0)
        return f"allowed: {len(kids)}"

    attempt("tcp", connect_tcp)
    attempt("udp", send_udp)
    attempt("unix", connect_unix)
    attempt("grader_environ", lambda: open(f"/proc/{grader}/environ", "rb").read().decode())
    attempt("grader_cmdline", lambda: open(f"/proc/{grader}/cmdline", "rb").read().decode())
    attempt("shm", leave_file)
    attempt("bind_allowed", lambda: bind(args["bind_port"]))
    attempt("bind_other", lambda: bind(0))
    attempt("kept_file", lambda: open(args["kept_file"]).read())
    attempt("work_file", lambda: open(os.path.join(args["work"], "w.txt"), "w").write("ok"))
    r, w = os.pipe()
    attempt("forks", fork_many)
    print(json.dumps(out))
    """
)


def userns_available() -> bool:
    """Whether this kernel lets a process make a user namespace (the probe's own test)."""
    code = (
        "import ctypes, sys; sys.exit(ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0)"
    )
    return subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.fixture
def listeners(tmp_path):
    """A TCP and a UDP socket on 127.0.0.1 and a UNIX socket under tmp_path, all outside
    the sandbox, as another program on the machine would hold them."""
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix_path = str(tmp_path / "service.sock")
    unix.bind(unix_path)
    unix.listen(8)
    yield {
        "tcp_port": tcp.getsockname()[1],
        "udp_port": udp.getsockname()[1],
        "unix_path": unix_path,
    }
    for s in (tcp, udp, unix):
        s.close()


def probe(tmp_path, listeners, forks=140, **confine) -> dict:
    work = tmp_path / "work"
    work.mkdir()
    kept = tmp_path / "kept.txt"  # a file the grader lets it read (a connection file)
    kept.write_text("kept")
    shm_name = f"vizlib-probe-{os.getpid()}-{tmp_path.name}"
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    bind_port = free.getsockname()[1]
    free.close()
    confine.setdefault("extra_read", (str(kept),))
    if "tcp_bind_ports" in confine:
        confine["tcp_bind_ports"] = (bind_port,)
    args = {
        "work": str(work),
        "confine": confine,
        "shm_name": shm_name,
        "kept_file": str(kept),
        "bind_port": bind_port,
        "forks": forks,
        **listeners,
    }
    env = {**os.environ, "INSTRUCTOR_TOKEN": "hunter2", "VIZLIB_PROFILE": "smoke"}
    run = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    out["shm_left"] = Path("/dev/shm", shm_name).exists()
    Path("/dev/shm", shm_name).unlink(missing_ok=True)
    return out


def test_clean_environment_keeps_only_what_python_and_the_book_need():
    kept = sandbox.clean_environment(
        {"PATH": "/bin", "LC_ALL": "C", "VIZLIB_PROFILE": "smoke", "AWS_SECRET": "x", "HOME": "/h"}
    )
    assert kept == {"PATH": "/bin", "LC_ALL": "C", "VIZLIB_PROFILE": "smoke"}


def test_an_isolated_submission_reaches_nothing_and_leaves_nothing(tmp_path, listeners):
    if not userns_available():
        out = probe(tmp_path, listeners, isolate=True)
        assert out["rules"]["network"].startswith("not enforced"), out["rules"]
        pytest.skip("this kernel refuses user namespaces: the rules say so (checked)")
    out = probe(tmp_path, listeners, isolate=True)
    rules = out["rules"]
    assert rules["network"].startswith("enforced"), rules
    assert rules["private folders"].startswith("enforced"), rules
    assert out["tcp"].startswith("denied") and out["udp"].startswith("denied"), out
    assert out["unix"].startswith("denied"), out  # its /tmp is not the machine's
    assert out["grader_environ"].startswith("denied"), out
    # Linux shows every process's command line to all: the grader keeps secrets out of it
    assert "other processes" in rules and "command lines" in rules["other processes"]
    assert "INSTRUCTOR_TOKEN" not in out["env"] and "VIZLIB_PROFILE" in out["env"]
    assert out["shm"] == "allowed" and not out["shm_left"], "its /dev/shm must vanish with it"
    assert out["kept_file"] == "kept" and out["work_file"] == 2, out  # still does its work
    if os.geteuid() == 0:
        assert rules["process cap"].startswith("not enforced") and "root" in rules["process cap"]
    else:
        assert rules["process cap"] == "enforced: 128 processes"
        assert out["forks"].startswith("denied"), out


def test_a_kernel_binds_its_own_ports_and_connects_nowhere(tmp_path, listeners):
    """A notebook kernel talks to the grader over TCP: it keeps a network namespace of the
    machine, where Landlock (ABI 4+) lets it bind its ports and connect to none."""
    out = probe(tmp_path, listeners, isolate=True, private_network=False, tcp_bind_ports=())
    if sandbox.landlock_abi() < 4:
        assert out["rules"]["network"].startswith("not enforced"), out["rules"]
        pytest.skip("Landlock without network rules: the rules say so (checked)")
    assert out["rules"]["network"].startswith("in part"), out["rules"]
    assert out["bind_allowed"] == "allowed" and out["bind_other"].startswith("denied"), out
    assert out["tcp"].startswith("denied"), out
    assert out["kept_file"] == "kept", out


def test_without_isolation_the_rules_say_what_was_not_asked(tmp_path, listeners):
    out = probe(tmp_path, listeners, forks=2)
    assert out["rules"]["private folders"] == "not asked"
    assert "INSTRUCTOR_TOKEN" not in out["env"], "the environment is cleaned in every case"


def test_the_report_says_every_rule_for_the_checks_and_the_kernel():
    report = sandbox.sandbox_report()
    assert set(report) == {"checks", "kernel"}
    for rules in report.values():
        assert {"network", "files", "environment", "process cap"} <= set(rules), rules
        for rule, text in rules.items():
            assert text.startswith(("enforced", "in part", "not enforced")), (rule, text)
