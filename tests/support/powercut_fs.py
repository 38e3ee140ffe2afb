#!/usr/bin/python3
"""A FUSE filesystem that models a disk with a volatile write cache, for power-cut tests.

The whole tree lives in this process's memory, in two layers per inode: what the programs see (current) and what
would survive a power cut (durable). A file's data and attributes become durable when the file is fsynced; a
directory's entries when the directory is fsynced (strict POSIX: fsyncing a file does not make its name durable).

A control socket (a line protocol, one JSON line answered per line) drives it:
  cut       freeze: every further operation blocks (the test then SIGKILLs the programs using the filesystem)
  restore   drop every volatile change at once (the tree becomes the durable tree), fail the blocked operations
            with EIO without applying them, serve again
  cut-at N  freeze right after the N-th durable-relevant operation from now completes (0 disarms)
  status    frozen or not, how many operations are blocked, the restore generation
  count     per path: durable-relevant operations, writes, bytes written, fsyncs, reads, bytes read, other operations
  reset     zero the counters
  quit      release the blocked operations (EIO) and unmount; the process then exits

Usage: powercut_fs.py MOUNTPOINT --control SOCKET
Run with Debian's /usr/bin/python3: fusepy (python3-fusepy) is a Debian package.
"""

import argparse
import ctypes
import errno
import json
import logging
import os
import socketserver
import stat
import subprocess
import sys
import threading
import time

import fusepy
from fusepy import FuseOSError

# Dirty data is tracked in chunks of this many bytes, so an fsync copies only what changed since the last one and
# a write costs what it writes, not the size of the file.
CHUNK = 16384

# How often a blocked operation looks whether its caller was interrupted (a SIGKILLed process), in seconds.
INTERRUPT_POLL_S = 0.01

# The operations that change what a power cut leaves behind: the ones cut-at counts.
DURABLE_RELEVANT = frozenset(
    ["write", "truncate", "fsync", "fsyncdir", "create", "mknod", "mkdir", "rename", "unlink", "rmdir", "symlink",
     "link"])

# Operations that never block on a freeze. They change nothing a power cut could keep (flush is a no-op here,
# release only forgets a handle), and a SIGKILLed process closes its files on the way out: if these blocked, the
# dying process would hang in close until the restore.
NEVER_BLOCK = frozenset(["flush", "release", "releasedir", "init", "destroy"])

# Counter slots per path.
OPS, WRITES, BYTES_WRITTEN, FSYNCS, READS, BYTES_READ, OTHER = range(7)
COUNTER_NAMES = ["ops", "writes", "bytesWritten", "fsyncs", "reads", "bytesRead", "otherOps"]

_libfuse = fusepy._libfuse
_libfuse.fuse_interrupted.restype = ctypes.c_int


class _OperationsWithNullPath(fusepy.fuse_operations):
    """fusepy's operation table with flag_nullpath_ok set.

    With hard_remove, a file unlinked while open has no path any more; without this flag libfuse fails its reads
    and writes with ENOENT instead of handing us the file handle, which is all we need.
    """

    def __init__(self):
        super().__init__()
        self.flag_nullpath_ok = 1


fusepy.fuse_operations = _OperationsWithNullPath


def now_ns():
    return time.time_ns()


class Node:
    """An inode: its current state and its durable state (what a power cut leaves)."""

    __slots__ = ("ino", "mode", "uid", "gid", "atime", "mtime", "ctime", "nlink", "data", "dirty", "durable_data",
                 "entries", "durable_entries", "target", "durable_meta", "path")

    def __init__(self, ino, mode, uid, gid, path, target=None):
        self.ino = ino
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.atime = self.mtime = self.ctime = now_ns()
        self.nlink = 1
        self.path = path
        self.target = target
        is_dir = stat.S_ISDIR(mode)
        self.data = None if is_dir else bytearray()
        self.dirty = set()
        # A name made durable before any fsync of the data brings back an empty file with its creation mode.
        self.durable_data = None if is_dir else bytearray()
        self.entries = {} if is_dir else None
        self.durable_entries = {} if is_dir else None
        self.durable_meta = self.meta()

    def is_dir(self):
        return self.entries is not None

    def meta(self):
        return (self.mode, self.uid, self.gid, self.atime, self.mtime, self.ctime)

    def size(self):
        if self.target is not None:
            return len(self.target.encode())
        if self.data is not None:
            return len(self.data)
        return 4096

    def mark(self, lo, hi):
        """Records that bytes [lo, hi) changed since the last fsync."""
        if hi > lo:
            self.dirty.update(range(lo // CHUNK, (hi - 1) // CHUNK + 1))

    def write(self, offset, data):
        size = len(self.data)
        if offset > size:
            self.data.extend(bytes(offset - size))
            self.mark(size, offset)
        self.data[offset:offset + len(data)] = data
        self.mark(offset, offset + len(data))
        self.mtime = self.ctime = now_ns()

    def truncate(self, length):
        size = len(self.data)
        if length < size:
            del self.data[length:]
            self.mark(length, size)
        elif length > size:
            self.data.extend(bytes(length - size))
            self.mark(size, length)
        self.mtime = self.ctime = now_ns()

    def sync_data(self):
        """fsync of a file: its data and attributes become durable (its names do not)."""
        durable = self.durable_data
        size = len(self.data)
        if len(durable) > size:
            del durable[size:]
        elif len(durable) < size:
            # Every byte past the old durable size lies in a dirty chunk, so the zeros are overwritten below.
            durable.extend(bytes(size - len(durable)))
        for index in self.dirty:
            lo = index * CHUNK
            if lo < size:
                hi = min(lo + CHUNK, size)
                durable[lo:hi] = self.data[lo:hi]
        self.dirty.clear()
        self.durable_meta = self.meta()

    def sync_entries(self):
        """fsync of a directory: its entries and attributes become durable."""
        self.durable_entries = dict(self.entries)
        self.durable_meta = self.meta()

    def reset_to_durable(self):
        (self.mode, self.uid, self.gid, self.atime, self.mtime, self.ctime) = self.durable_meta
        if self.entries is not None:
            self.entries = dict(self.durable_entries)
        elif self.data is not None:
            self.data = bytearray(self.durable_data)
            self.dirty.clear()


class Handle:
    __slots__ = ("node", "generation")

    def __init__(self, node, generation):
        self.node = node
        self.generation = generation


class PowercutFs:
    """The fusepy operations. One lock serialises them: simple, and the model needs a total order of operations."""

    use_ns = True

    def __init__(self, mountpoint):
        self.mountpoint = mountpoint
        self.cond = threading.Condition(threading.Lock())
        self.next_ino = 2
        self.root = Node(1, stat.S_IFDIR | 0o755, os.getuid(), os.getgid(), "/")
        self.root.nlink = 2
        self.handles = {}
        self.next_fh = 1
        self.frozen = False
        self.generation = 0
        self.blocked = 0
        self.cut_at = None
        self.mounted = False
        self.orphaned = False
        self.durable_ops = 0
        # The last durable-relevant operation and its path: where an automatic cut fell.
        self.last_op = None
        self.counters = {}

    # ---- the gate every operation passes ----

    def __call__(self, op, *args):
        with self.cond:
            writeback = op == "write" and fusepy.fuse_get_context()[2] == 0
            if writeback and self.frozen:
                # The kernel writing back pages of a shared mmap on its own (pid 0), e.g. while a SIGKILLed process
                # closes its files. Waiting would hang that process in exit until the restore; taking the data
                # and dropping it is what the volatile cache does with it anyway (nothing can read it before the
                # restore, which would drop it).
                return len(args[1])
            if op not in NEVER_BLOCK:
                self._gate()
            result = getattr(self, op)(*args)
            self._count(op, args, result)
            if op in DURABLE_RELEVANT and not writeback:
                # Writeback of mmap pages is left out: when the kernel sends it is not reproducible.
                self.durable_ops += 1
                self.last_op = {"op": op, "path": self._path_of(op, args)}
                if self.cut_at is not None:
                    self.cut_at -= 1
                    if self.cut_at <= 0:
                        self.cut_at = None
                        self.frozen = True
            return result

    def _gate(self):
        """Blocks while frozen; EIO when a restore came meanwhile, EINTR when the caller was interrupted."""
        if not self.frozen:
            return
        generation = self.generation
        self.blocked += 1
        try:
            while self.frozen and self.generation == generation:
                self.cond.wait(INTERRUPT_POLL_S)
                # A SIGKILLed caller waits for our answer in the kernel (the request was already read): answering
                # lets it die now. Nothing is applied.
                if self.frozen and self.generation == generation and _libfuse.fuse_interrupted():
                    raise FuseOSError(errno.EINTR)
        finally:
            self.blocked -= 1
        if self.generation != generation:
            raise FuseOSError(errno.EIO)

    def _path_of(self, op, args):
        """The path an operation names, or the path of the handle it works on."""
        path = args[0] if args and isinstance(args[0], str) else None
        if path is None and op in ("write", "read", "fsync", "truncate", "getattr", "fsyncdir"):
            handle = self.handles.get(args[-1])
            path = handle.node.path if handle else "?"
        return path

    def _count(self, op, args, result):
        path = self._path_of(op, args)
        slots = self.counters.get(path)
        if slots is None:
            slots = self.counters[path] = [0] * len(COUNTER_NAMES)
        if op in DURABLE_RELEVANT:
            slots[OPS] += 1
        else:
            slots[OTHER] += 1
        if op == "write":
            slots[WRITES] += 1
            slots[BYTES_WRITTEN] += result
        elif op == "read":
            slots[READS] += 1
            slots[BYTES_READ] += len(result)
        elif op in ("fsync", "fsyncdir"):
            slots[FSYNCS] += 1

    # ---- control ----

    def control(self, line):
        words = line.split()
        command = words[0] if words else ""
        with self.cond:
            if command == "cut":
                self.frozen = True
                return {"ok": True, "frozen": True}
            if command == "restore":
                failed = self.blocked
                self._restore()
                return {"ok": True, "frozen": False, "generation": self.generation, "failed": failed}
            if command == "cut-at" and len(words) == 2 and words[1].isdigit():
                n = int(words[1])
                self.cut_at = n if n > 0 else None
                return {"ok": True, "cutAt": self.cut_at}
            if command == "status":
                return {"ok": True, "mounted": self.mounted, "frozen": self.frozen, "blocked": self.blocked,
                        "generation": self.generation, "cutAt": self.cut_at, "durableOps": self.durable_ops,
                        "lastOp": self.last_op}
            if command == "count":
                paths = {path: dict(zip(COUNTER_NAMES, slots)) for path, slots in self.counters.items()}
                totals = dict(zip(COUNTER_NAMES, (sum(column) for column in zip(*self.counters.values()))))
                if not totals:
                    totals = dict.fromkeys(COUNTER_NAMES, 0)
                return {"ok": True, "paths": paths, "totals": totals}
            if command == "reset":
                self.counters = {}
                self.durable_ops = 0
                return {"ok": True}
            if command == "quit":
                self._release_blocked()
                return {"ok": True}
        return {"ok": False, "error": f"unknown command: {line!r}"}

    def _release_blocked(self):
        """Unfreezes: the blocked operations see a new generation and fail with EIO."""
        self.frozen = False
        self.cut_at = None
        self.generation += 1
        self.cond.notify_all()

    def _restore(self):
        """The power comes back: the tree becomes exactly the durable tree reachable from the root."""
        reached = {}
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.ino in reached:
                continue
            reached[node.ino] = node
            node.reset_to_durable()
            if node.is_dir():
                stack.extend(node.entries.values())
        # Link counts follow the durable tree; inodes it does not reach are forgotten.
        for node in reached.values():
            node.nlink = 2 if node.is_dir() else 0
        for node in reached.values():
            if node.is_dir():
                for child in node.entries.values():
                    if child.is_dir():
                        node.nlink += 1
                    else:
                        child.nlink += 1
        # Every handle belongs to the time before the cut (its processes were killed).
        self.handles.clear()
        self._release_blocked()

    # ---- helpers ----

    def _lookup(self, path):
        node = self.root
        if path == "/":
            return node
        for name in path[1:].split("/"):
            if node.entries is None:
                raise FuseOSError(errno.ENOTDIR)
            node = node.entries.get(name)
            if node is None:
                raise FuseOSError(errno.ENOENT)
        return node

    def _parent(self, path):
        head, _, name = path.rpartition("/")
        parent = self._lookup(head or "/")
        if not parent.is_dir():
            raise FuseOSError(errno.ENOTDIR)
        return parent, name

    def _node(self, path, fh):
        """The node of a handle (when there is one) or of a path."""
        if fh:
            handle = self.handles.get(fh)
            if handle is None or handle.generation != self.generation:
                # A handle from before a restore: that file is gone with the power.
                raise FuseOSError(errno.EIO)
            return handle.node
        if path is None:
            raise FuseOSError(errno.ENOENT)
        return self._lookup(path)

    def _open_handle(self, node):
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = Handle(node, self.generation)
        return fh

    def _new_node(self, path, mode, target=None):
        uid, gid, _ = fusepy.fuse_get_context()
        node = Node(self.next_ino, mode, uid, gid, path, target)
        self.next_ino += 1
        return node

    def _link_in(self, path, node):
        parent, name = self._parent(path)
        if name in parent.entries:
            raise FuseOSError(errno.EEXIST)
        parent.entries[name] = node
        if node.is_dir():
            parent.nlink += 1
        parent.mtime = parent.ctime = now_ns()

    # ---- filesystem operations (fusepy's names and arguments) ----

    def init(self, path):
        # Called with the lock held, like every operation.
        self.mounted = True

    def destroy(self, path):
        pass

    def getattr(self, path, fh=None):
        node = self._node(path, fh)
        size = node.size()
        return {"st_mode": node.mode, "st_ino": node.ino, "st_nlink": node.nlink, "st_uid": node.uid,
                "st_gid": node.gid, "st_size": size, "st_blocks": (size + 511) // 512, "st_blksize": 4096,
                "st_atime": node.atime, "st_mtime": node.mtime, "st_ctime": node.ctime}

    def statfs(self, path):
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 1 << 20, "f_bfree": 1 << 19, "f_bavail": 1 << 19,
                "f_files": 1 << 20, "f_ffree": 1 << 19, "f_favail": 1 << 19, "f_namemax": 255}

    def create(self, path, mode):
        node = self._new_node(path, stat.S_IFREG | (mode & 0o7777))
        self._link_in(path, node)
        return self._open_handle(node)

    def mknod(self, path, mode, dev):
        if not stat.S_ISREG(mode):
            raise FuseOSError(errno.EPERM)
        self._link_in(path, self._new_node(path, mode))

    def mkdir(self, path, mode):
        node = self._new_node(path, stat.S_IFDIR | (mode & 0o7777))
        node.nlink = 2
        self._link_in(path, node)

    def symlink(self, path, target):
        self._link_in(path, self._new_node(path, stat.S_IFLNK | 0o777, target))

    def readlink(self, path):
        node = self._lookup(path)
        if node.target is None:
            raise FuseOSError(errno.EINVAL)
        return node.target

    def link(self, path, existing):
        node = self._lookup(existing)
        if node.is_dir():
            raise FuseOSError(errno.EPERM)
        self._link_in(path, node)
        node.nlink += 1
        node.ctime = now_ns()

    def unlink(self, path):
        parent, name = self._parent(path)
        node = parent.entries.get(name)
        if node is None:
            raise FuseOSError(errno.ENOENT)
        if node.is_dir():
            raise FuseOSError(errno.EISDIR)
        del parent.entries[name]
        node.nlink -= 1
        node.ctime = parent.mtime = parent.ctime = now_ns()

    def rmdir(self, path):
        parent, name = self._parent(path)
        node = parent.entries.get(name)
        if node is None:
            raise FuseOSError(errno.ENOENT)
        if not node.is_dir():
            raise FuseOSError(errno.ENOTDIR)
        if node.entries:
            raise FuseOSError(errno.ENOTEMPTY)
        del parent.entries[name]
        parent.nlink -= 1
        parent.mtime = parent.ctime = now_ns()

    def rename(self, old, new):
        source, old_name = self._parent(old)
        node = source.entries.get(old_name)
        if node is None:
            raise FuseOSError(errno.ENOENT)
        target, new_name = self._parent(new)
        existing = target.entries.get(new_name)
        if existing is node:
            return
        if existing is not None:
            if existing.is_dir():
                if not node.is_dir():
                    raise FuseOSError(errno.EISDIR)
                if existing.entries:
                    raise FuseOSError(errno.ENOTEMPTY)
                target.nlink -= 1
            elif node.is_dir():
                raise FuseOSError(errno.ENOTDIR)
            else:
                existing.nlink -= 1
        del source.entries[old_name]
        target.entries[new_name] = node
        if node.is_dir():
            source.nlink -= 1
            target.nlink += 1
        node.path = new
        node.ctime = source.mtime = source.ctime = target.mtime = target.ctime = now_ns()

    def chmod(self, path, mode):
        node = self._lookup(path)
        node.mode = stat.S_IFMT(node.mode) | (mode & 0o7777)
        node.ctime = now_ns()

    def chown(self, path, uid, gid):
        node = self._lookup(path)
        if uid != -1:
            node.uid = uid
        if gid != -1:
            node.gid = gid
        node.ctime = now_ns()

    def utimens(self, path, times=None):
        node = self._lookup(path)
        node.atime, node.mtime = times if times else (now_ns(), now_ns())
        node.ctime = now_ns()

    def open(self, path, flags):
        return self._open_handle(self._lookup(path))

    def opendir(self, path):
        node = self._lookup(path)
        if not node.is_dir():
            raise FuseOSError(errno.ENOTDIR)
        return self._open_handle(node)

    def read(self, path, size, offset, fh):
        node = self._node(path, fh)
        return bytes(node.data[offset:offset + size])

    def write(self, path, data, offset, fh):
        node = self._node(path, fh)
        node.write(offset, data)
        return len(data)

    def truncate(self, path, length, fh=None):
        node = self._node(path, fh)
        if node.data is None:
            raise FuseOSError(errno.EISDIR if node.is_dir() else errno.EINVAL)
        node.truncate(length)

    def fsync(self, path, datasync, fh):
        # fdatasync is treated as fsync: the attributes that matter (size, mode) follow the data.
        node = self._node(path, fh)
        if node.is_dir():
            node.sync_entries()
        elif node.data is not None:
            node.sync_data()

    def fsyncdir(self, path, datasync, fh):
        node = self._node(path, fh)
        if not node.is_dir():
            raise FuseOSError(errno.ENOTDIR)
        node.sync_entries()

    def readdir(self, path, fh):
        node = self._node(path, fh)
        return [".", ".."] + list(node.entries)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        self.handles.pop(fh, None)

    def releasedir(self, path, fh):
        self.handles.pop(fh, None)


class ControlHandler(socketserver.StreamRequestHandler):
    """One connection of the control socket: a command per line, a JSON line back for each."""

    def handle(self):
        fs = self.server.fs
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                answer = fs.control(line)
            except Exception as error:  # an answer for every line, whatever went wrong
                answer = {"ok": False, "error": repr(error)}
            self.wfile.write((json.dumps(answer) + "\n").encode())
            self.wfile.flush()
            if line == "quit":
                unmount(fs.mountpoint)


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def unmount(mountpoint):
    """Detaches the mount; libfuse's loop then ends and the process exits."""
    for command in (["fusermount", "-u", "-z", mountpoint], ["umount", "-l", mountpoint]):
        try:
            if subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                return
        except FileNotFoundError:
            continue


def parent_alive(parent):
    if os.getppid() != parent:
        return False
    try:
        with open(f"/proc/{parent}/stat") as status:
            state = status.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    # A zombie whose last thread is stuck in a request we block never gets reaped (we stay its child): its death
    # has to be seen here, and answering the blocked requests lets it finish.
    return state != "Z"


def watch_parent(fs):
    """Unmounts when the process that started us dies (a test runner killed before it could unmount)."""
    parent = os.getppid()
    while parent_alive(parent):
        time.sleep(0.5)
    with fs.cond:
        fs.orphaned = True
        fs._release_blocked()
    unmount(fs.mountpoint)


def main():
    parser = argparse.ArgumentParser(description="A power-cut filesystem for tests (see the module's docstring).")
    parser.add_argument("mountpoint")
    parser.add_argument("--control", required=True, help="path of the control socket (outside the mount)")
    parser.add_argument("--temp-dir", help="the caller's temp dir holding the mount point and the socket: removed "
                        "(when empty) if this daemon exits because its parent died")
    parser.add_argument("--log", help="append stdout and stderr (libfuse's too) to this file")
    parser.add_argument("--debug", action="store_true", help="libfuse's debug output on stderr")
    options = parser.parse_args()
    if options.log:
        log = os.open(options.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)

    fs = PowercutFs(os.path.abspath(options.mountpoint))
    # A socket left by a daemon that was SIGKILLed would make bind fail.
    if os.path.exists(options.control) and stat.S_ISSOCK(os.stat(options.control).st_mode):
        os.unlink(options.control)
    server = ControlServer(options.control, ControlHandler)
    server.fs = fs
    threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
    threading.Thread(target=watch_parent, args=(fs,), name="parent-watch", daemon=True).start()
    try:
        fusepy.FUSE(
            fs,
            fs.mountpoint,
            foreground=True,
            debug=options.debug,
            fsname="powercut",
            subtype="powercut",
            # Unlink really unlinks an open file (libfuse would otherwise rename it to .fuse_hidden*, a namespace
            # change of its own).
            hard_remove=True,
            use_ino=True,
            # No kernel caching of names and attributes: after a restore the kernel must ask again. (Data pages
            # are dropped on every open, as kernel_cache is off, and whenever a file's size changes.)
            entry_timeout=0,
            attr_timeout=0,
            negative_timeout=0,
            # Writes of up to 128 KiB per request instead of 4 KiB.
            big_writes=True,
            max_write=131072,
            default_permissions=True,
        )
    finally:
        server.server_close()
        try:
            os.unlink(options.control)
        except FileNotFoundError:
            pass
        if fs.orphaned and options.temp_dir:
            # Nobody is left to clean up. rmdir only removes empty directories: never the contents of a mount.
            for remove, path in ((os.unlink, options.log), (os.rmdir, fs.mountpoint), (os.rmdir, options.temp_dir)):
                try:
                    if path:
                        remove(path)
                except OSError:
                    pass


if __name__ == "__main__":
    main()
