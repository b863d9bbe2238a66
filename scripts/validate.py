#!/usr/bin/env python3
"""Set what vmsim counts for a program beside what Linux counts for it (issue 17).

  scripts/validate.py run [--memory-max SIZE] [--swap SIZE] [--vmsim PATH] [--runs N]
                          [--json OUT] [--check] -- PROG ARGS
  scripts/validate.py corpus [--only NAME,NAME] [--check] [--write-doc docs/validation.md]
                             [--vmsim PATH] [--runs N] [--swap SIZE] [--json OUT]

`run` measures PROG natively N times (root, a fresh memory cgroup per run, caches
dropped, a swap file on; rusage from wait4, /proc/vmstat deltas), records it with
`vmsim record` and replays it with `vmsim run --json`, and prints the counters side by
side with a verdict for minflt, majflt, pswpin and pswpout. `corpus` does that for
every program of validation/corpus.toml. See docs/validation.md.

Exit status: 0 done (and, with --check, every headline counter ok); 1 --check and a
counter is off; 2 bad arguments or corpus file; 3 this machine cannot measure
natively (says why); 4 a program could not be built, set up, run, recorded or
replayed; 130 interrupted. The machine is left as found: the swap file is switched
off and deleted and every cgroup made is removed, whatever happens.
"""

import argparse
import datetime
import errno
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_VMSIM = os.path.join(ROOT, "target", "release", "vmsim")
DEFAULT_CORPUS = os.path.join(ROOT, "validation", "corpus.toml")
HEADLINE = ["rusage.minflt", "rusage.majflt", "vmstat.pswpin", "vmstat.pswpout"]
INFO_VMSTAT = [
    "pgfault", "pgmajfault", "pgpgin", "pgpgout", "pgscan_kswapd", "pgscan_direct",
    "pgsteal_kswapd", "pgsteal_direct", "pgactivate", "pgdeactivate", "pgrefill",
    "workingset_refault_anon", "workingset_refault_file", "workingset_activate_anon",
    "workingset_activate_file", "oom_kill", "swap_ra", "swap_ra_hit",
]
DOC_BEGIN = "<!-- validation-table:begin -->"
DOC_END = "<!-- validation-table:end -->"
# File systems a swap file cannot live on (or that are memory themselves).
NO_SWAP_FS = {"tmpfs", "ramfs", "overlay", "nfs", "nfs4", "cifs", "9p", "virtiofs",
              "squashfs", "fuse", "fuseblk", "proc", "sysfs", "devtmpfs", "aufs", "zfs"}
PROG = "validate.py"


class Fail(Exception):
    """An expected failure: a message for the user and an exit status."""

    def __init__(self, message, status=2):
        super().__init__(message)
        self.status = status


class Interrupted(BaseException):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def on_signal(signum, _frame):
    raise Interrupted(signum)


CLEANUP_SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


class quiet_signals:
    """Blocks the signals that interrupt the harness while cleanup runs, so a second
    Ctrl-C cannot leave a swap file on or a group behind."""

    def __enter__(self):
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, CLEANUP_SIGNALS)

    def __exit__(self, *exc):
        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


def log(msg=""):
    print(msg, flush=True)


def warn(msg):
    print(f"{PROG}: warning: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- sizes


SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(iB)?\s*$", re.IGNORECASE)
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text):
    """'32M', '32MiB', '1G', '4096' -> bytes (powers of 1024); None if not a size."""
    m = SIZE_RE.match(str(text))
    if not m or (m.group(3) and not m.group(2)):
        return None
    return int(m.group(1)) * UNITS[m.group(2).upper()]


def size_arg(text):
    n = parse_size(text)
    if n is None:
        raise argparse.ArgumentTypeError(f"`{text}` is not a size (e.g. 32M, 512MiB, 1G)")
    return n


def fmt_size(n):
    """Bytes -> the shortest exact IEC string ('32MiB'), as vmsim and people read it."""
    for unit, mult in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= mult and n % mult == 0:
            return f"{n // mult}{unit}"
    return str(n)


# ---------------------------------------------------------------- the native side


def read_mounts():
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 4:
                mnt = fields[1].replace("\\040", " ")
                out.append((mnt, fields[2], fields[3].split(",")))
    return out


def fs_type(path):
    path = os.path.realpath(path)
    best, kind = "", None
    for mnt, fstype, _ in read_mounts():
        if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
            best, kind = mnt, fstype
    return kind


def find_memory_cgroup():
    """(version, mount point, our own group's path under it) of the memory controller,
    or a reason string when there is none."""
    mounts = read_mounts()
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            hier, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(","):
                own[c] = path
            if hier == "0":
                own[""] = path
    for mnt, fstype, opts in mounts:
        if fstype == "cgroup" and "memory" in opts and "memory" in own:
            return ("v1", mnt, own["memory"])
    for mnt, fstype, _ in mounts:
        if fstype == "cgroup2" and "" in own:
            try:
                with open(os.path.join(mnt, "cgroup.controllers")) as f:
                    if "memory" in f.read().split():
                        return ("v2", mnt, own[""])
            except OSError:
                pass
    return "no memory cgroup controller is mounted (neither v1 `cgroup ... memory` " \
           "nor a cgroup2 whose cgroup.controllers lists memory)"


def native_problems():
    """Why this machine cannot measure natively (empty if it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root (needs to make memory cgroups, swapon, "
                        "and write /proc/sys/vm/drop_caches); try sudo")
    cg = find_memory_cgroup()
    if isinstance(cg, str):
        problems.append(cg)
    for tool in ("mkswap", "swapon", "swapoff"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/sbin:/usr/sbin"):
            problems.append(f"`{tool}` not found (util-linux)")
    if os.geteuid() == 0 and not os.access("/proc/sys/vm/drop_caches", os.W_OK):
        problems.append("/proc/sys/vm/drop_caches is not writable (read-only /proc?)")
    if not hasattr(os, "posix_spawn") or not hasattr(os, "wait4"):
        problems.append("this Python lacks os.posix_spawn or os.wait4")
    return problems


def write_file(path, text):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def read_vmstat():
    out = {}
    with open("/proc/vmstat") as f:
        for line in f:
            k, _, v = line.partition(" ")
            out[k] = int(v)
    return out


def tool(name):
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/sbin:/usr/sbin") or name


class Native:
    """The native side: a swap file for the whole session, a fresh memory cgroup per
    run. Use as a context manager; leaving it switches the swap off and deletes it."""

    def __init__(self, swap_bytes, swap_dir=None):
        problems = native_problems()
        if problems:
            raise Fail("cannot measure natively on this machine:\n  - " + "\n  - ".join(problems), 3)
        self.version, self.mount, own = find_memory_cgroup()
        self.own_procs = os.path.join(self.mount, own.lstrip("/"), "cgroup.procs")
        self.swap_bytes = swap_bytes
        self.swap_dir = swap_dir
        self.swap_tmp = None
        self.swap_file = None
        self.swap_on = False
        self.enabled_subtree = False
        self.groups = 0

    # -- swap
    def __enter__(self):
        try:
            if self.version == "v2":
                self.enable_v2_memory()
            if self.swap_bytes:
                self.make_swap()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def pick_swap_dir(self):
        if self.swap_dir:
            kind = fs_type(self.swap_dir)
            if kind in NO_SWAP_FS:
                raise Fail(f"--swap-dir {self.swap_dir} is on {kind}, which cannot hold a swap file", 3)
            return self.swap_dir
        for d in ("/var/tmp", os.getcwd(), "/tmp"):
            if os.path.isdir(d) and os.access(d, os.W_OK) and fs_type(d) not in NO_SWAP_FS:
                return d
        raise Fail("no directory on a disk file system for the swap file "
                   "(tried /var/tmp, the current one, /tmp); name one with --swap-dir", 3)

    def make_swap(self):
        page = os.sysconf("SC_PAGE_SIZE")
        if self.swap_bytes % page or self.swap_bytes < 16 * page:
            raise Fail(f"--swap {self.swap_bytes}: want a whole number of {page}-byte pages, at least 16", 2)
        self.swap_tmp = tempfile.mkdtemp(prefix="vmsim-validate-", dir=self.pick_swap_dir())
        self.swap_file = os.path.join(self.swap_tmp, "swap")
        fd = os.open(self.swap_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            chunk = bytes(1 << 20)
            left = self.swap_bytes
            while left:
                n = os.write(fd, chunk[:min(left, len(chunk))])
                left -= n
            os.fsync(fd)
        except OSError as e:
            raise Fail(f"cannot write the swap file {self.swap_file}: {e.strerror}", 3)
        finally:
            os.close(fd)
        for argv in ([tool("mkswap"), self.swap_file], [tool("swapon"), self.swap_file]):
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
            if p.returncode != 0:
                raise Fail(f"`{shlex.join(argv)}` failed: {p.stderr.strip()}", 3)
            if argv[0].endswith("swapon"):
                self.swap_on = True

    def enable_v2_memory(self):
        ctl = os.path.join(self.mount, "cgroup.subtree_control")
        with open(ctl) as f:
            if "memory" in f.read().split():
                return
        try:
            write_file(ctl, "+memory")
        except OSError as e:
            raise Fail(f"cannot enable the memory controller in {ctl}: {e.strerror}", 3)
        self.enabled_subtree = True

    def close(self):
        with quiet_signals():
            if self.swap_on:
                p = subprocess.run([tool("swapoff"), self.swap_file], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if p.returncode != 0:
                    warn(f"swapoff {self.swap_file} failed: {p.stderr.strip()}; run it by hand")
                    return
                self.swap_on = False
            if self.swap_tmp:
                shutil.rmtree(self.swap_tmp, ignore_errors=True)
                self.swap_tmp = None
            if self.enabled_subtree:
                try:
                    write_file(os.path.join(self.mount, "cgroup.subtree_control"), "-memory")
                except OSError as e:
                    warn(f"cannot turn the memory controller back off in {self.mount}: {e.strerror}")
                self.enabled_subtree = False

    # -- groups
    def make_group(self, memory_max):
        self.groups += 1
        path = os.path.join(self.mount, f"vmsim-validate-{os.getpid()}-{self.groups}")
        os.mkdir(path)
        try:
            if self.version == "v1":
                if memory_max is not None:
                    write_file(os.path.join(path, "memory.limit_in_bytes"), str(memory_max))
            else:
                write_file(os.path.join(path, "memory.max"), "max" if memory_max is None else str(memory_max))
                write_file(os.path.join(path, "memory.swap.max"), "max")
        except BaseException:
            self.remove_group(path)
            raise
        return path

    def remove_group(self, path):
        """Kills whatever is left in the group (only the program's descendants can be)
        and removes it."""
        with quiet_signals():
            me = os.getpid()
            for _ in range(100):
                try:
                    with open(os.path.join(path, "cgroup.procs")) as f:
                        pids = [int(x) for x in f.read().split()]
                except FileNotFoundError:
                    return
                if me in pids:
                    write_file(self.own_procs, str(me))
                for pid in pids:
                    if pid != me:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        try:
                            os.waitpid(pid, os.WNOHANG)
                        except ChildProcessError:
                            pass
                try:
                    os.rmdir(path)
                    return
                except FileNotFoundError:
                    return
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        warn(f"cannot remove cgroup {path}: {e.strerror}")
                        return
                time.sleep(0.05)
            warn(f"cgroup {path} is still busy; remove it by hand (rmdir)")

    def run_once(self, path, argv, memory_max, cwd, env, timeout):
        """One measured run: drop caches, snapshot vmstat, spawn into a fresh group,
        wait4, snapshot vmstat."""
        group = self.make_group(memory_max)
        try:
            procs = os.path.join(group, "cgroup.procs")
            null_in = os.open(os.devnull, os.O_RDONLY)
            null_out = os.open(os.devnull, os.O_WRONLY)
            try:
                actions = [(os.POSIX_SPAWN_DUP2, null_in, 0), (os.POSIX_SPAWN_DUP2, null_out, 1),
                           (os.POSIX_SPAWN_DUP2, null_out, 2)]
                me = str(os.getpid())
                os.sync()
                write_file("/proc/sys/vm/drop_caches", "3")
                old_cwd = os.getcwd()
                os.chdir(cwd)
                try:
                    before = read_vmstat()
                    t0 = time.monotonic()
                    # posix_spawn is vfork-like (no copy of the harness, no faults
                    # counted to the child before exec); the child starts in the group
                    # because its parent is in it for these few lines.
                    write_file(procs, me)
                    try:
                        pid = os.posix_spawn(path, argv, env, file_actions=actions)
                    finally:
                        write_file(self.own_procs, me)
                finally:
                    os.chdir(old_cwd)
            finally:
                os.close(null_in)
                os.close(null_out)
            timed_out = False
            deadline = t0 + timeout
            while True:
                wpid, status, ru = os.wait4(pid, os.WNOHANG)
                if wpid == pid:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    _, status, ru = os.wait4(pid, 0)
                    timed_out = True
                    break
                time.sleep(0.002)
            seconds = time.monotonic() - t0
            after = read_vmstat()
        finally:
            self.remove_group(group)
        vmstat = {k: after[k] - before[k] for k in ["pswpin", "pswpout"] + INFO_VMSTAT if k in before and k in after}
        return {
            "exit_status": os.waitstatus_to_exitcode(status),
            "timed_out": timed_out,
            "seconds": round(seconds, 3),
            "rusage": {"minflt": ru.ru_minflt, "majflt": ru.ru_majflt},
            "vmstat": vmstat,
        }


# ---------------------------------------------------------------- the vmsim side


def show_tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            text = f.read().splitlines()
    except OSError:
        return ""
    return "\n".join("    " + x for x in text[-lines:])


def run_vmsim(vmsim, path, argv, memory_max, swap, cwd, env, work):
    trace = os.path.join(work, "prog.vmb")
    record = [vmsim, "record", "-o", trace, "--", path, *argv[1:]]
    replay = [vmsim, "run", trace, "--json", "--swap", fmt_size(swap), "--policy", "two-list"]
    if memory_max is not None:
        replay += ["--memory-max", fmt_size(memory_max)]
    log(f"  $ {shlex.join(record)}")
    err = os.path.join(work, "record.stderr")
    t0 = time.monotonic()
    with open(err, "wb") as e:
        p = subprocess.run(record, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=e)
    record_seconds = time.monotonic() - t0
    with open(err, errors="replace") as f:
        text = f.read()
    m = re.search(r"^recorded (\d+) events .*\(exit status (\d+)(?:, killed by signal (\d+))?\)$", text, re.M)
    if not m or not os.path.exists(trace):
        raise Fail(f"`vmsim record` failed (exit status {p.returncode}); its stderr:\n{show_tail(err)}", 4)
    rec_exit = -int(m.group(3)) if m.group(3) else int(m.group(2))
    untraced = re.search(r"^vmsim: (\d+) exec\(s\) could not be followed", text, re.M)
    if untraced:
        warn(f"vmsim record: {untraced.group(1)} exec(s) ran untraced")
    log(f"  $ {shlex.join(replay)}")
    out = os.path.join(work, "run.json")
    t0 = time.monotonic()
    with open(out, "wb") as o, open(err, "wb") as e:
        p = subprocess.run(replay, stdin=subprocess.DEVNULL, stdout=o, stderr=e)
    replay_seconds = time.monotonic() - t0
    if p.returncode != 0:
        raise Fail(f"`vmsim run` failed (exit status {p.returncode}); its stderr:\n{show_tail(err)}", 4)
    try:
        with open(out) as f:
            report = json.load(f)
        kernel = report["kernel"]
        values = {f"rusage.{k}": kernel["rusage"].get(k) for k in ("minflt", "majflt")}
        values.update({f"vmstat.{k}": v for k, v in kernel["vmstat"].items()})
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise Fail(f"`vmsim run --json` printed no kernel.rusage / kernel.vmstat ({e!r}); "
                   f"its output starts:\n{show_tail(out, 10)}", 4)
    return {
        "commands": [shlex.join(record), shlex.join(replay)],
        "events": int(m.group(1)),
        "record_exit_status": rec_exit,
        "record_seconds": round(record_seconds, 3),
        "replay_seconds": round(replay_seconds, 3),
        "values": values,
    }


# ---------------------------------------------------------------- comparing


def median(xs):
    m = statistics.median(xs)
    return int(m) if m == int(m) else m


def verdict(runs, vm):
    """The acceptance rule for a headline counter."""
    if vm is None or not runs:
        return False
    med = statistics.median(runs)
    return abs(vm - med) <= max(0.1 * med, 50) or min(runs) <= vm <= max(runs)


def compare(native_runs, vm_values):
    rows = []
    names = HEADLINE + [f"vmstat.{k}" for k in INFO_VMSTAT if k in native_runs[0]["vmstat"]]
    for name in names:
        group, key = name.split(".")
        runs = [r[group][key] for r in native_runs]
        vm = vm_values.get(name)
        med = median(runs)
        diff = None
        if vm is not None and med:
            diff = round(100.0 * (vm - med) / med, 1)
        row = {"counter": name, "linux": runs, "median": med, "vmsim": vm, "diff_pct": diff}
        if name in HEADLINE:
            row["ok"] = verdict(runs, vm)
        rows.append(row)
    return rows


def fmt_num(x):
    if x is None:
        return "-"
    return f"{x:.1f}" if isinstance(x, float) else str(x)


def print_table(rows, nruns):
    head = ["counter"] + [f"run{i + 1}" for i in range(nruns)] + ["median", "vmsim", "diff %", "ok"]
    body = []
    for r in rows:
        if r["diff_pct"] is not None:
            diff = f"{r['diff_pct']:+.1f}"
        else:
            diff = "0.0" if r["vmsim"] == r["median"] else "-"
        ok = ("ok" if r["ok"] else "NO") if "ok" in r else "info"
        body.append([r["counter"]] + [fmt_num(x) for x in r["linux"]] +
                    [fmt_num(r["median"]), fmt_num(r["vmsim"]), diff, ok])
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    log(line(head))
    for i, b in enumerate(body):
        if i == len(HEADLINE):
            log("  ".join("-" * w for w in widths))
        log(line(b))


# ---------------------------------------------------------------- one program


def resolve(prog):
    if "/" in prog:
        path = os.path.abspath(prog)
    else:
        path = shutil.which(prog)
        if path is None:
            raise Fail(f"`{prog}` is not in PATH", 4)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise Fail(f"`{prog}` is not an executable file", 4)
    return path


def validate(native, vmsim, argv, memory_max, swap, runs, cwd=None, env=None, timeout=600):
    """Measures argv natively and in vmsim; returns everything as a dict."""
    cwd = cwd or os.getcwd()
    env = dict(os.environ if env is None else env)
    path = _resolve_in(argv[0], cwd)
    argv = [path] + list(argv[1:])
    result = {
        "argv": argv, "cwd": cwd,
        "memory_max": None if memory_max is None else fmt_size(memory_max),
        "swap": fmt_size(swap), "native": {"cgroup": native.version, "runs": []},
    }
    for i in range(runs):
        r = native.run_once(path, argv, memory_max, cwd, env, timeout)
        note = " (timed out, killed)" if r["timed_out"] else ""
        log(f"  native run {i + 1}/{runs}: exit status {r['exit_status']}{note}, {r['seconds']:.2f} s, "
            f"minflt {r['rusage']['minflt']} majflt {r['rusage']['majflt']} "
            f"pswpin {r['vmstat'].get('pswpin')} pswpout {r['vmstat'].get('pswpout')}")
        result["native"]["runs"].append(r)
    work = tempfile.mkdtemp(prefix="vmsim-validate-")
    try:
        result["vmsim"] = run_vmsim(vmsim, path, argv, memory_max, swap, cwd, env, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = compare(result["native"]["runs"], result["vmsim"]["values"])
    result["counters"] = rows
    result["ok"] = all(r["ok"] for r in rows if "ok" in r)
    statuses = {r["exit_status"] for r in result["native"]["runs"]}
    result["exit_statuses"] = sorted(statuses)
    if result["vmsim"]["record_exit_status"] not in statuses:
        warn(f"the program exited with status {result['vmsim']['record_exit_status']} under `vmsim record` "
             f"but {', '.join(map(str, sorted(statuses)))} natively")
    return result


def _resolve_in(prog, cwd):
    if "/" in prog and not os.path.isabs(prog):
        return resolve(os.path.join(cwd, prog))
    return resolve(prog)


def check_vmsim(path):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise Fail(f"no vmsim binary at {path} (build it with `cargo build --release -p vmsim-cli`, "
                   "or name one with --vmsim)", 2)
    return os.path.abspath(path)


def vmsim_version(vmsim):
    try:
        return subprocess.run([vmsim, "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def write_json(path, data):
    try:
        with open(path, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
    except OSError as e:
        raise Fail(f"cannot write {path}: {e.strerror}", 2)


def swap_note(native):
    if not native.swap_file:
        return "no swap"
    return f"swap file {native.swap_file} ({fmt_size(native.swap_bytes)})"


def cmd_run(args):
    vmsim = check_vmsim(args.vmsim)
    if not args.command:
        raise Fail("name the program after `--` (e.g. validate.py run --memory-max 32M -- ./prog)")
    argv = args.command[1:] if args.command[0] == "--" else args.command
    if not argv:
        raise Fail("name the program after `--`")
    _resolve_in(argv[0], os.getcwd())
    with Native(args.swap, args.swap_dir) as native:
        log(f"Linux {platform.release()}; memory cgroup {native.version} at {native.mount}; "
            f"{swap_note(native)}; {args.runs} runs")
        result = validate(native, vmsim, argv, args.memory_max, args.swap, args.runs)
    log()
    print_table(result["counters"], args.runs)
    if result["exit_statuses"] != [0]:
        warn(f"the program's native exit status: {', '.join(map(str, result['exit_statuses']))}")
    result.update(kernel=platform.release(), date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                  vmsim_version=vmsim_version(vmsim))
    if args.json:
        write_json(args.json, result)
    if args.check and not result["ok"]:
        bad = [r["counter"] for r in result["counters"] if r.get("ok") is False]
        log(f"\nFAIL: {', '.join(bad)} outside the acceptance rule")
        return 1
    return 0


# ---------------------------------------------------------------- the corpus


ENTRY_KEYS = {"name", "source", "command", "args", "memory_max", "setup", "description", "ci", "env"}


def shown(path):
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def load_corpus(path):
    rel = shown(path)
    try:
        import tomllib  # Python 3.11
    except ImportError:
        raise Fail("reading the corpus needs Python 3.11 or later (tomllib)")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise Fail(f"{rel}: no such file")
    except tomllib.TOMLDecodeError as e:
        raise Fail(f"{rel}: not valid TOML: {e}")
    progs = data.get("program")
    if not isinstance(progs, list) or not progs:
        raise Fail(f"{rel}: want [[program]] tables, found none")
    unknown = set(data) - {"program"}
    if unknown:
        raise Fail(f"{rel}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    seen = set()
    entries = []
    for i, p in enumerate(progs, 1):
        where = f"{rel}: program {i}"
        if not isinstance(p.get("name"), str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", p["name"]):
            raise Fail(f"{where}: `name` = {p.get('name')!r}: want a word of letters, digits, _ . -")
        name = p["name"]
        where = f"{rel}: program {i} (`{name}`)"
        if name in seen:
            raise Fail(f"{where}: the name is used twice")
        seen.add(name)
        extra = set(p) - ENTRY_KEYS
        if extra:
            raise Fail(f"{where}: unknown key(s) {', '.join(sorted(extra))} "
                       f"(known: {', '.join(sorted(ENTRY_KEYS))})")
        if ("source" in p) == ("command" in p):
            raise Fail(f"{where}: give exactly one of `source` (a C file) or `command` (a program)")
        for key in ("source", "command", "setup", "description"):
            if key in p and not isinstance(p[key], str):
                raise Fail(f"{where}: `{key}` = {p[key]!r}: want a string")
        if not p.get("description"):
            raise Fail(f"{where}: `description` is missing")
        if "source" in p:
            src = os.path.join(os.path.dirname(path), p["source"])
            if not p["source"].endswith(".c") or not os.path.isfile(src):
                raise Fail(f"{where}: `source` = {p['source']!r}: no such C file next to {rel}")
            p["source_path"] = src
        if "command" in p and not (p["command"].startswith("/") or "/" not in p["command"]):
            raise Fail(f"{where}: `command` = {p['command']!r}: want an absolute path or a name in PATH")
        args = p.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise Fail(f"{where}: `args` = {args!r}: want a list of strings")
        p["args"] = args
        if "memory_max" in p:
            n = parse_size(p["memory_max"]) if isinstance(p["memory_max"], str) else None
            if n is None:
                raise Fail(f"{where}: `memory_max` = {p['memory_max']!r}: want a size string (e.g. \"32M\")")
            p["memory_max_bytes"] = n
        else:
            p["memory_max_bytes"] = None
        if not isinstance(p.get("ci", False), bool):
            raise Fail(f"{where}: `ci` = {p['ci']!r}: want true or false")
        env = p.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise Fail(f"{where}: `env` = {env!r}: want a table of strings")
        entries.append(p)
    return entries


def expand(text, places):
    for k, v in places.items():
        text = text.replace("{" + k + "}", v)
    return text


def prepare(entry, build, tmp, corpus_dir):
    """Builds or finds the program and runs its setup; returns argv and env."""
    places = {"tmp": tmp, "build": build, "corpus": corpus_dir}
    if "source_path" in entry:
        exe = os.path.join(build, entry["name"])
        cc = ["gcc", "-O2", "-o", exe, entry["source_path"]]
        p = subprocess.run(cc, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if p.returncode != 0:
            raise Fail(f"`{shlex.join(cc)}` failed:\n{p.stderr.strip()}", 4)
    else:
        exe = entry["command"]
    if entry.get("setup"):
        cmd = expand(entry["setup"], places)
        p = subprocess.run(["/bin/sh", "-c", cmd], cwd=tmp, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
        if p.returncode != 0:
            detail = f":\n{p.stderr.strip()}" if p.stderr.strip() else ""
            raise Fail(f"setup `{cmd}` failed (exit status {p.returncode}){detail}", 4)
    env = dict(os.environ)
    env.update(entry.get("env", {}))
    return [exe] + [expand(a, places) for a in entry["args"]], env


def cell(row):
    if row is None:
        return "-"
    ok = "ok" if row["ok"] else "**no**"
    return f"{fmt_num(row['median'])} / {fmt_num(row['vmsim'])} {ok}"


def summary_rows(results):
    rows = []
    for name, limit, res in results:
        if "error" in res:
            rows.append([name, limit] + ["error"] * len(HEADLINE))
            continue
        by = {r["counter"]: r for r in res["counters"]}
        rows.append([name, limit] + [cell(by.get(h)) for h in HEADLINE])
    return rows


def print_summary(results):
    head = ["program", "limit"] + [h.split(".")[1] + " (Linux / vmsim)" for h in HEADLINE]
    body = [[c.replace("**", "") for c in r] for r in summary_rows(results)]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    for cells in [head] + body:
        log("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())


def doc_table(results, meta):
    lines = [
        DOC_BEGIN,
        "",
        f"Measured on Linux {meta['kernel']} ({meta['machine']}) on {meta['date'][:10]}, "
        f"with {meta['vmsim_version']} (binary of {meta['vmsim_built']}); {meta['runs']} native runs "
        f"per program, swap {meta['swap']}; the corpus took {meta['minutes']:.1f} minutes. "
        "Each cell is the Linux median / vmsim, then the verdict.",
        "",
        "| program | limit | " + " | ".join(h.split(".")[1] for h in HEADLINE) + " |",
        "|---|---|" + "---|" * len(HEADLINE),
    ]
    for r in summary_rows(results):
        lines.append("| " + " | ".join(f"`{r[0]}`" if i == 0 else c for i, c in enumerate(r)) + " |")
    lines += ["", DOC_END]
    return "\n".join(lines)


def write_doc(path, table):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise Fail(f"--write-doc {path}: {e.strerror}")
    b, e = text.find(DOC_BEGIN), text.find(DOC_END)
    if b < 0 or e < b:
        raise Fail(f"--write-doc {path}: no `{DOC_BEGIN}` ... `{DOC_END}` section to replace")
    text = text[:b] + table + text[e + len(DOC_END):]
    with open(path, "w") as f:
        f.write(text)


def cmd_corpus(args):
    vmsim = check_vmsim(args.vmsim)
    entries = load_corpus(args.corpus)
    if args.only:
        want = [w for w in args.only.split(",") if w]
        names = {e["name"] for e in entries}
        missing = [w for w in want if w not in names]
        if missing:
            raise Fail(f"--only: no program named {', '.join(missing)} in {shown(args.corpus)} "
                       f"(there are: {', '.join(e['name'] for e in entries)})")
        entries = [e for e in entries if e["name"] in want]
        if args.write_doc:
            raise Fail("--write-doc wants the whole corpus; leave out --only")
    if not shutil.which("gcc") and any("source_path" in e for e in entries):
        raise Fail("gcc is needed to build the corpus's C programs", 3)
    corpus_dir = os.path.dirname(os.path.abspath(args.corpus))
    t_start = time.monotonic()
    results = []
    build = tempfile.mkdtemp(prefix="vmsim-validate-build-")
    tmp = tempfile.mkdtemp(prefix="vmsim-validate-data-")
    try:
        with Native(args.swap, args.swap_dir) as native:
            log(f"Linux {platform.release()}; memory cgroup {native.version} at {native.mount}; "
                f"{swap_note(native)}; {args.runs} runs; "
                f"{len(entries)} programs")
            for e in entries:
                limit = e.get("memory_max", "none")
                log(f"\n== {e['name']} (limit {limit}): {e['description']}")
                t0 = time.monotonic()
                try:
                    argv, env = prepare(e, build, tmp, corpus_dir)
                    res = validate(native, vmsim, argv, e["memory_max_bytes"], args.swap, args.runs,
                                   cwd=tmp, env=env)
                    if res["exit_statuses"] != [0]:
                        warn(f"{e['name']}: native exit status {res['exit_statuses']}, want 0")
                        res["error"] = f"native exit status {res['exit_statuses']}"
                    else:
                        log()
                        print_table(res["counters"], args.runs)
                except Fail as f:
                    if f.status == 3:
                        raise
                    log(f"  error: {f}")
                    res = {"error": str(f)}
                res["name"], res["seconds"] = e["name"], round(time.monotonic() - t0, 1)
                log(f"  ({res['seconds']:.1f} s)")
                results.append((e["name"], limit, res))
    finally:
        shutil.rmtree(build, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    minutes = (time.monotonic() - t_start) / 60
    log(f"\nSummary (Linux median / vmsim, verdict), {minutes:.1f} minutes:")
    print_summary(results)
    built = datetime.datetime.fromtimestamp(os.path.getmtime(vmsim)).astimezone()
    meta = {
        "kernel": platform.release(), "machine": platform.machine(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "vmsim": vmsim, "vmsim_version": vmsim_version(vmsim),
        "vmsim_built": built.strftime("%Y-%m-%d %H:%M"), "runs": args.runs,
        "swap": fmt_size(args.swap), "minutes": minutes,
    }
    if args.json:
        write_json(args.json, {"meta": meta, "programs": [r for _, _, r in results]})
    errors = [n for n, _, r in results if "error" in r]
    if args.write_doc:
        write_doc(args.write_doc, doc_table(results, meta))
        log(f"wrote the table into {args.write_doc}")
    if errors:
        log(f"\nERROR: could not measure {', '.join(errors)}")
        return 4
    bad = [n for n, _, r in results if not r["ok"]]
    if args.check and bad:
        log(f"\nFAIL: a headline counter is off for {', '.join(bad)}")
        return 1
    return 0


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(prog="validate.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--vmsim", default=DEFAULT_VMSIM, help="the vmsim binary (default: target/release/vmsim)")
        p.add_argument("--swap", type=size_arg, default=512 << 20, help="swap size for Linux and vmsim (default 512M)")
        p.add_argument("--swap-dir", help="where to make the swap file (default /var/tmp)")
        p.add_argument("--runs", type=int, default=3, help="native runs per program (default 3)")
        p.add_argument("--json", metavar="OUT", help="write everything measured to OUT as JSON")
        p.add_argument("--check", action="store_true", help="exit 1 if a headline counter is off")

    r = sub.add_parser("run", help="one program: Linux against vmsim")
    r.add_argument("--memory-max", type=size_arg, help="the memory cgroup's limit (default none)")
    common(r)
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- PROG ARGS")
    c = sub.add_parser("corpus", help="every program of validation/corpus.toml")
    c.add_argument("--only", help="comma-separated program names")
    c.add_argument("--write-doc", metavar="DOC", help="rewrite DOC's table section (docs/validation.md)")
    c.add_argument("--corpus", default=DEFAULT_CORPUS, help="the corpus file (default validation/corpus.toml)")
    common(c)
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs wants at least 1")

    for s in CLEANUP_SIGNALS:
        signal.signal(s, on_signal)
    try:
        return cmd_run(args) if args.cmd == "run" else cmd_corpus(args)
    except Fail as f:
        print(f"{PROG}: {f}", file=sys.stderr)
        return f.status
    except Interrupted as i:
        print(f"{PROG}: interrupted by {signal.Signals(i.signum).name}; cleaned up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
