"""Confine a process that runs a student's code: its own folder, limits, no reach outside.

Used by the grader on every process that runs submitted code (the exercise checks and
the notebook's kernel). After :func:`confine` the process

- runs in ``work`` (its own temporary folder), with ``HOME`` and ``TMPDIR`` inside it;
- has resource limits: memory (``RLIMIT_DATA``, the memory a program allocates; an
  ``RLIMIT_AS`` limit would count the ~3.5 GB of CUDA libraries that ``import torch``
  maps before any tensor exists), CPU seconds, file size, no core dumps;
- on Linux 5.13+ is confined by Landlock, the kernel's unprivileged sandbox: it may
  write only inside ``work``, may read only the Python installation, the system
  folders and its own folder (not the other submissions, the instructor's masters or
  the results), may not signal or trace processes outside its sandbox, so it cannot
  reach the grader or another student's run;
- reports every attempt to write outside ``work`` through an audit hook
  (:pep:`578`), which also blocks such writes where Landlock is missing;
- gets a clean environment: only the locale, ``PATH``, thread counts, the GPU's variables
  and ``VIZLIB_*`` are kept from the grader's (an instructor's tokens never reach it);
- where the kernel lets an ordinary process create namespaces (``unshare(2)`` of a user,
  mount, network and IPC namespace): has no network at all (an empty network namespace:
  no TCP, UDP or abstract UNIX socket reaches the machine or the internet), its own empty
  ``/tmp``, ``/var/tmp``, ``/dev/shm`` and ``/run`` (size-limited memory file systems that
  vanish with it, so nothing is left behind and no UNIX socket of another program there
  can be reached), and a cap on its processes (``RLIMIT_NPROC``, counted per user
  namespace; the kernel exempts root's processes from it).

:func:`confine` returns what it enforced and what it could not, rule by rule, so the
grader reports it instead of skipping it silently.

Nothing here is needed by a reader: only the grader imports it.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import sys
from pathlib import Path

__all__ = ["PRIVATE_FOLDERS", "clean_environment", "confine", "landlock_abi", "system_read_roots"]

# Landlock system calls: the same numbers on x86_64 and arm64 (generic syscall table).
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights (include/uapi/linux/landlock.h), by ABI version.
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REMOVE_DIR, _REMOVE_FILE, _MAKE_CHAR, _MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_MAKE_REG, _MAKE_SOCK, _MAKE_FIFO, _MAKE_BLOCK, _MAKE_SYM = (
    1 << 8,
    1 << 9,
    1 << 10,
    1 << 11,
    1 << 12,
)
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

_BIND_TCP, _CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4: network rights
_RULE_NET_PORT = 2

_READ = _EXECUTE | _READ_FILE | _READ_DIR
_FILE_ONLY = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE  # rights a rule on a file may hold


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers, 0 where there is none (not Linux, too old)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        abi = _libc().syscall(
            _SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION)
        )
    except (OSError, AttributeError):
        return 0
    return max(int(abi), 0)


def system_read_roots() -> list[str]:
    """Folders every sandboxed Python may read: the system and the Python installation.

    The folder the grader was started from is not among them (it may hold the masters or
    the submissions); ``vizlib`` itself is added by its package folder.
    """
    roots = [
        "/usr",
        "/lib",
        "/lib32",
        "/lib64",
        "/bin",
        "/sbin",
        "/etc",
        "/opt",
        "/proc",
        "/sys",
        "/dev",
    ]
    prefixes = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
    }
    roots += sorted(prefixes)
    import site
    import sysconfig

    extra = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    extra += [sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    for entry in sys.path:  # only entries inside the installation (not the grader's folder)
        if entry and any(
            os.path.realpath(entry).startswith(os.path.realpath(p) + os.sep) for p in prefixes
        ):
            extra.append(entry)
    import vizlib

    extra.append(os.path.dirname(vizlib.__file__))
    # never the whole file system (a Python installed with prefix "/" would give it)
    return [
        r for r in dict.fromkeys(roots + extra) if os.path.exists(r) and os.path.realpath(r) != "/"
    ]


def _landlock(
    write_dirs: list[str],
    read_dirs: list[str],
    rw_files: list[str],
    abi: int,
    tcp_bind_ports: tuple[int, ...] | None = None,
) -> None:
    """Restrict the calling process (and its future children) for good. With
    ``tcp_bind_ports`` (ABI 4+) it may not connect over TCP and may bind only those ports."""
    libc = _libc()
    handled = (
        _EXECUTE
        | _WRITE_FILE
        | _READ_FILE
        | _READ_DIR
        | _REMOVE_DIR
        | _REMOVE_FILE
        | _MAKE_CHAR
        | _MAKE_DIR
        | _MAKE_REG
        | _MAKE_SOCK
        | _MAKE_FIFO
        | _MAKE_BLOCK
        | _MAKE_SYM
    )
    if abi >= 2:
        handled |= _REFER
    if abi >= 3:
        handled |= _TRUNCATE
    net = _BIND_TCP | _CONNECT_TCP if tcp_bind_ports is not None and abi >= 4 else 0
    attr = _RulesetAttr(
        handled, net, (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0
    )
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(
        _SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
    )
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")

    def allow(path: str, access: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if not os.path.isdir(path):
                access &= _FILE_ONLY
            rule = _PathBeneathAttr(access & handled, fd)
            if (
                libc.syscall(
                    _SYS_ADD_RULE,
                    ruleset,
                    _RULE_PATH_BENEATH,
                    ctypes.byref(rule),
                    ctypes.c_uint32(0),
                )
                < 0
            ):
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
        finally:
            os.close(fd)

    try:
        for path in read_dirs:
            allow(path, _READ)
        for path in rw_files:
            allow(path, _READ | _WRITE_FILE | _TRUNCATE)
        for path in write_dirs:
            allow(path, handled)
        for port in tcp_bind_ports or () if net else ():
            rule = _NetPortAttr(_BIND_TCP, int(port))
            if (
                libc.syscall(
                    _SYS_ADD_RULE, ruleset, _RULE_NET_PORT, ctypes.byref(rule), ctypes.c_uint32(0)
                )
                < 0
            ):
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for port {port}")
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# audit events that change the file system -> positions of the paths they write to
_WRITE_EVENTS = {
    "os.remove": (0,),
    "os.rename": (0, 1),
    "os.replace": (0, 1),
    "os.mkdir": (0,),
    "os.rmdir": (0,),
    "shutil.rmtree": (0,),
    "os.symlink": (1,),
    "os.link": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "shutil.copyfile": (1,),
    "shutil.move": (0, 1),
}


def _install_write_hook(work: str, allowed_files: tuple[str, ...], events_fd: int, block: bool):
    """Report (and, without Landlock, refuse) writes outside ``work`` through an audit hook."""
    inside = work.rstrip(os.sep) + os.sep
    seen: list[int] = [0]
    abspath, fsdecode, write = os.path.abspath, os.fsdecode, os.write

    def outside(path) -> str | None:
        if isinstance(path, int):
            return None
        try:
            full = abspath(fsdecode(path))
        except Exception:
            return None
        if (
            full == work
            or full.startswith(inside)
            or full in allowed_files
            or full.startswith("/dev/shm/")
        ):
            return None
        return full

    def hook(event, args):
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, 0))[:3]
            if isinstance(mode, str):
                writes = any(c in mode for c in "wax+")
            else:
                writes = bool((flags or 0) & _WRITE_FLAGS)
            target = outside(path) if writes else None
        elif event in _WRITE_EVENTS:
            target = None
            for k in _WRITE_EVENTS[event]:
                if target is None and k < len(args):
                    target = outside(args[k])
        else:
            return
        if target is None:
            return
        if seen[0] < 50:  # a report, not a log: the first 50 attempts are enough
            seen[0] += 1
            try:
                write(events_fd, (json.dumps({"event": event, "path": target}) + "\n").encode())
            except Exception:
                pass
        if block:
            raise PermissionError(
                errno.EACCES, "the grader allows writing only in the working folder", target
            )

    sys.addaudithook(hook)


# -- namespaces and the environment ---------------------------------------------------

# unshare(2) flags (include/uapi/linux/sched.h) and mount(2) flags (include/uapi/linux/mount.h)
_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWUSER, _CLONE_NEWNET = (
    0x00020000,
    0x08000000,
    0x10000000,
    0x40000000,
)
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 1 << 1, 1 << 2, 1 << 12, 1 << 14, 1 << 18
# Folders every program may write to, each replaced by an empty memory file system of
# its own: nothing written there outlives the sandbox, and no UNIX socket another program
# keeps there (a database's, a desktop's) can be reached.
PRIVATE_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm", "/run")

# What a sandboxed process keeps of the grader's environment: everything else (tokens,
# passwords, the instructor's paths) is dropped.
_KEPT_VARIABLES = {
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
}
_KEPT_PREFIXES = ("LC_", "VIZLIB_", "NVIDIA_")


def clean_environment(environ: dict) -> dict:
    """The part of ``environ`` a sandboxed process may see (see ``_KEPT_VARIABLES``)."""
    return {
        k: v for k, v in environ.items() if k in _KEPT_VARIABLES or k.startswith(_KEPT_PREFIXES)
    }


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _unshare(private_network: bool) -> None:
    """A user namespace (the same user id inside), with mount and IPC namespaces and, if
    asked, an empty network namespace (only a loopback interface, left down)."""
    libc = _libc()
    uid, gid = os.geteuid(), os.getegid()
    flags = _CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWIPC
    flags |= _CLONE_NEWNET if private_network else 0
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare failed")
    _write("/proc/self/setgroups", "deny")  # required before an unprivileged gid_map
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def _mount_private_folders(size_mb: int, keep: list[str]) -> tuple[list[str], list[str]]:
    """Our own empty ``PRIVATE_FOLDERS`` (each a tmpfs of ``size_mb``), with the paths of
    ``keep`` that lie inside one (the working folder, a Python installed under /tmp) bound
    back at the same place. Returns (folders made private, folders left as they are)."""
    libc = _libc()
    # first: no mount of ours propagates back to the machine's
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "making the mounts private failed")
    keep = [os.path.realpath(p) for p in keep if os.path.exists(p)]
    done, left = [], []
    for folder in PRIVATE_FOLDERS:
        if not os.path.isdir(folder) or os.path.islink(folder):
            continue
        if folder in keep:  # the whole folder is needed (e.g. read by every process)
            left.append(folder)
            continue
        inside = sorted({p for p in keep if p.startswith(folder + "/")})
        # outermost first; a path inside another kept one comes with it
        inside = [p for p in inside if not any(p.startswith(q + "/") for q in inside)]
        fds = {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for p in inside}
        try:
            options = f"size={size_mb}m,mode=1777".encode()
            flags = _MS_NOSUID | _MS_NODEV
            if libc.mount(b"tmpfs", folder.encode(), b"tmpfs", flags, options) != 0:
                raise OSError(ctypes.get_errno(), f"mounting a private {folder} failed")
            for path, fd in fds.items():
                if os.path.isdir(f"/proc/self/fd/{fd}"):
                    os.makedirs(path, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    open(path, "a").close()
                source = f"/proc/self/fd/{fd}".encode()
                if libc.mount(source, path.encode(), None, _MS_BIND | _MS_REC, None) != 0:
                    raise OSError(ctypes.get_errno(), f"binding {path} into the private {folder}")
        finally:
            for fd in fds.values():
                os.close(fd)
        done.append(folder)
    return done, left


def _isolate(
    private_network: bool, max_processes: int, tmpfs_mb: int, keep: list[str]
) -> dict[str, str]:
    """The namespace rules, each ``"enforced: ..."`` or ``"not enforced: <why>"``."""
    rules = {}
    try:
        _unshare(private_network)
    except OSError as exc:
        why = f"not enforced: this kernel refused a user namespace ({exc.strerror or exc})"
        rules["private folders"] = why
        rules["network"] = why if private_network else "not asked"
        rules["process cap"] = why
        return rules
    rules["network"] = "enforced: an empty network namespace" if private_network else "not asked"
    # another user namespace: the kernel's ptrace check now refuses it the environment and
    # memory of the grader and of other students' runs (/proc/<pid>/environ, mem)
    rules["other processes"] = (
        "in part: their environments and memory are unreadable; their command lines are "
        "not (Linux shows them to every process: the grader keeps secrets out of them)"
    )
    try:
        folders, left = _mount_private_folders(tmpfs_mb, keep)
        rules["private folders"] = f"enforced: {', '.join(folders)} ({tmpfs_mb} MB each)"
        if left:
            rules["private folders"] += f"; left shared: {', '.join(left)} (Python lives there)"
    except OSError as exc:
        rules["private folders"] = f"not enforced: {exc}"
    resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    rules["process cap"] = (
        "not enforced: the grader runs as root, whose processes the kernel does not count "
        "(run it as an ordinary user)"
        if os.geteuid() == 0
        else f"enforced: {max_processes} processes"
    )
    return rules


def confine(
    work: str | os.PathLike,
    *,
    memory_mb: int,
    cpu_seconds: int,
    file_mb: int = 256,
    extra_read: tuple[str, ...] = (),
    events_fd: int = -1,
    env: dict | None = None,
    isolate: bool = False,
    private_network: bool = True,
    tcp_bind_ports: tuple[int, ...] = (),
    max_processes: int = 128,
    tmpfs_mb: int = 256,
) -> dict:
    """Confine the calling process (call it in a fresh, single-threaded child, before any
    student code).

    Args:
        work: the folder the process runs in and may write to (created if missing).
        memory_mb: memory the process may allocate beyond what it holds now (the
            interpreter and the libraries imported before the fork).
        cpu_seconds: CPU time limit; the process gets SIGXCPU, then SIGKILL.
        file_mb: largest file it may write.
        extra_read: more folders or files it may read (e.g. its connection file).
        events_fd: an open file descriptor where attempts to write outside ``work`` are
            reported as JSON lines; -1 for none.
        env: environment variables to set on top of the confined ones (the rest of the
            grader's environment is dropped but for :func:`clean_environment`'s part).
        isolate: apply the namespace rules (private folders, network, process cap).
        private_network: with ``isolate``, no network at all (an empty network namespace). A process that
            must talk to the grader over TCP (a notebook kernel on ``tcp_bind_ports``)
            passes False: then, where Landlock has network rules (ABI 4+), it may bind
            only those ports and connect to none.
        max_processes: the most tasks (processes and threads: torch and a kernel start
            dozens of threads) it and its children may run at once.
        tmpfs_mb: the size of each private folder (``PRIVATE_FOLDERS``).

    Returns:
        What was applied: ``{"landlock": abi or 0, "memory_limit_mb": ..., "held_mb": ...,
        "rules": {rule: "enforced: ..." or "not enforced: why"}}``.
    """
    work = os.path.realpath(os.fspath(work))
    os.makedirs(os.path.join(work, "tmp"), exist_ok=True)
    os.chdir(work)
    abi = landlock_abi()
    read_roots = system_read_roots() + list(extra_read)
    if isolate:
        rules = _isolate(private_network, max_processes, tmpfs_mb, keep=[work] + read_roots)
    else:
        rules = {k: "not asked" for k in ("network", "private folders", "process cap")}
    kept = clean_environment(dict(os.environ))
    os.environ.clear()
    os.environ.update(kept)
    rules["environment"] = f"enforced: {len(kept)} variables kept ({', '.join(sorted(kept))})"
    os.environ.update(
        {
            "HOME": work,
            "TMPDIR": os.path.join(work, "tmp"),
            "MPLCONFIGDIR": os.path.join(work, ".mpl"),
            "XDG_CACHE_HOME": os.path.join(work, ".cache"),
            "XDG_CONFIG_HOME": os.path.join(work, ".config"),
            "IPYTHONDIR": os.path.join(work, ".ipython"),
            "JUPYTER_RUNTIME_DIR": os.path.join(work, ".jupyter"),
            "TORCH_HOME": os.path.join(work, ".torch"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    os.environ.update(env or {})
    import tempfile

    tempfile.tempdir = None  # re-read TMPDIR

    held_mb = _data_mb()
    limit = (held_mb + memory_mb) << 20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb << 20, file_mb << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    rw_files = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]
    rw_files += [str(p) for p in Path("/dev").glob("nvidia*")]  # a GPU, where the grader has one
    tcp_rules = isolate and not private_network and abi >= 4
    if abi:
        write_dirs = [work] + (["/dev/shm"] if os.path.isdir("/dev/shm") else [])
        _landlock(
            write_dirs,
            read_roots,
            rw_files,
            abi,
            tcp_bind_ports=tuple(tcp_bind_ports) if tcp_rules else None,
        )
    if isolate and not private_network:
        rules["network"] = (
            f"in part: TCP only to bind its own {len(tcp_bind_ports)} port(s), no connection "
            f"(Landlock ABI {abi}); UDP not restricted"
            if tcp_rules
            else f"not enforced: Landlock ABI {abi} has no network rules (4+ needed)"
        )
    rules["files"] = (
        f"enforced: Landlock ABI {abi}"
        if abi
        else "in part: Python's own file functions only (no Landlock in this kernel)"
    )
    _install_write_hook(work, tuple(rw_files), events_fd, block=not abi)
    return {"landlock": abi, "memory_limit_mb": memory_mb, "held_mb": held_mb, "rules": rules}


def _data_mb() -> int:
    """Private writable memory this process holds now (``VmData``), in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) // 1024 + 1
    except OSError:
        pass
    return 0


_REPORT_PROBE = """
import json, sys, tempfile
from vizlib.exercises.sandbox import confine
kernel = sys.argv[1] == "kernel"
info = confine(tempfile.mkdtemp(), memory_mb=256, cpu_seconds=30, isolate=True,
               private_network=not kernel, tcp_bind_ports=(1,) if kernel else ())
print(json.dumps(info))
"""


def sandbox_report() -> dict[str, dict[str, str]]:
    """What the sandbox enforces on this machine, rule by rule, for the processes that run
    the checks and for the notebook kernel: ``{"checks": {rule: text}, "kernel": {...}}``.

    Measured, not assumed: a fresh process confines itself as each would and says what
    held. Limits that are per process only are said too."""
    import subprocess

    report = {}
    for role in ("checks", "kernel"):
        run = subprocess.run(
            [sys.executable, "-c", _REPORT_PROBE, role],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        try:
            info = json.loads(run.stdout.strip().splitlines()[-1])
            rules = dict(info["rules"])
        except (IndexError, ValueError, KeyError):
            rules = {"sandbox": f"not enforced: the probe failed ({run.stderr.strip()[-300:]})"}
        rules["memory, CPU time, file size"] = (
            "in part: limits per process (rlimits); a submission's processes together are "
            "not limited (no delegated cgroup)"
        )
        report[role] = rules
    return report
