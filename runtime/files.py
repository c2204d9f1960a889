"""Crash-safe writing and bounded reading of the files Kiln makes: models, checkpoints,
programs, cache entries, IR dumps.

``write_atomic`` writes into an anonymous file (Linux's ``O_TMPFILE``: it has no name until
it is complete, so a process killed mid-write leaves nothing behind), then gives it its name;
readers see the old file or the new one, never part of one. Files get the user's umask, as
``open`` would give them. ``read_zip`` and ``read_array`` read archives whose every size is
checked before anything is inflated or allocated, and report every damage through the
caller's error type.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tempfile
import zipfile
import zlib
from collections.abc import Callable

import numpy as np

_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
               ValueError, NotImplementedError, RuntimeError, UnicodeDecodeError)


def write_atomic(path: str, data: str | bytes) -> None:
    """``data`` at ``path``, all of it or (after a crash, even a SIGKILL) none of it. The
    file is named only between its last byte and its rename; a writer killed in those two
    system calls leaves ``.tmp-<pid>-...``, which the next write into the folder removes."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    _sweep(folder)
    os.makedirs(folder, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o666)  # the umask applies
    except (AttributeError, OSError):  # no O_TMPFILE here: a named temporary
        _write_named(path, folder, raw)
        return
    try:
        _write_all(fd, raw)
        tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.urandom(6).hex()}")
        # named only when whole: linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd (os.link takes
        # that path only when given a directory fd; the source path is absolute)
        at = os.open("/", os.O_RDONLY)
        try:
            os.link(f"/proc/self/fd/{fd}", tmp, src_dir_fd=at, follow_symlinks=True)
        finally:
            os.close(at)
    except OSError:
        os.close(fd)
        _write_named(path, folder, raw)
        return
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


_STALE = re.compile(r"^\.tmp-(\d+)-[0-9a-f]{12}$")


def _sweep(folder: str) -> None:
    """Remove the named temporaries of writers that are no longer running."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(".tmp-")]
    except OSError:
        return
    for name in names:
        m = _STALE.match(name)
        if m is None or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:  # its writer is gone
            _unlink(os.path.join(folder, name))
        except OSError:
            pass


def _write_all(fd: int, raw: bytes) -> None:
    view = memoryview(raw)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def _write_named(path: str, folder: str, raw: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # (mkstemp makes 0600)
        _write_all(fd, raw)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_zip(source: str | bytes, where: str, fail: Callable[[str], Exception],
             max_entry: int | dict, max_total: int, names: set | None = None) -> dict:
    """The entries of a zip archive (a path or its bytes), each at most ``max_entry`` bytes
    inflated (or, a dict: only the entries it names, each at most its value), all of them at
    most ``max_total``, as the archive declares them before anything is inflated (zipfile
    stops inflating an entry at its declared size). ``names``: the entries it must hold, no
    more. Every damage raises ``fail(message)``."""
    try:
        if isinstance(source, (str, os.PathLike)):
            size = os.path.getsize(source)
            if size > max_total:
                raise fail(f"{where}: {size} bytes; at most {max_total} expected")
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) \
                as z:
            infos = z.infolist()
            seen = [i.filename for i in infos]
            if len(set(seen)) != len(seen):
                raise fail(f"{where}: an entry appears twice")
            if names is not None and set(seen) != set(names):
                raise fail(f"{where}: holds entries {sorted(seen)}; expected {sorted(names)}")
            if isinstance(max_entry, dict):
                infos = [i for i in infos if i.filename in max_entry]
            limit = max_entry if isinstance(max_entry, dict) else \
                {i.filename: max_entry for i in infos}
            big = [f"{i.filename} ({i.file_size} bytes; at most {limit[i.filename]})"
                   for i in infos if i.file_size > limit[i.filename]]
            total = sum(i.file_size for i in infos)
            if big or total > max_total:
                raise fail(f"{where}: entries would inflate too far: "
                           f"{', '.join(big) or f'{total} bytes in all; at most {max_total}'}")
            return {i.filename: z.read(i) for i in infos}
    except _ZIP_ERRORS as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise fail(f"{where}: damaged or not the expected file ({type(e).__name__}: {e})") \
            from None


def read_array(data: bytes, where: str, fail: Callable[[str], Exception],
               shape: tuple | None = None, dtype=None) -> np.ndarray:
    """An ``.npy`` entry's array, its header checked before its data is read: a plain
    numeric or boolean dtype (never an object array: nothing is unpickled), C order, the
    data's length matching the header, and ``shape``/``dtype`` where given."""
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        header = _header(f, version)
    except (ValueError, SyntaxError, EOFError) as e:
        raise fail(f"{where}: damaged array header ({e})") from None
    got_shape, fortran, got_dtype = header
    if got_dtype.hasobject or got_dtype.kind not in "biufc" or fortran:
        raise fail(f"{where}: holds a {got_dtype} array{' in Fortran order' if fortran else ''}"
                   f"; only plain numeric arrays are read")
    if shape is not None and (tuple(got_shape) != tuple(shape) or got_dtype != np.dtype(dtype)):
        raise fail(f"{where}: holds {got_dtype}{list(got_shape)}; expected "
                   f"{np.dtype(dtype)}{list(shape)}")
    n = int(np.prod(got_shape, dtype=np.int64)) * got_dtype.itemsize
    body = data[f.tell():]
    if len(body) != n:
        raise fail(f"{where}: holds {len(body)} bytes of data; its header says {n}")
    return np.frombuffer(body, got_dtype).reshape(got_shape).copy()


def _header(f, version) -> tuple:
    """(shape, fortran_order, dtype) of an .npy header, parsed as a literal (numpy's own
    parser is private across versions)."""
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise ValueError(f"unknown .npy version {version}")
    width = 2 if version == (1, 0) else 4
    length = int.from_bytes(f.read(width), "little")
    if length > 1 << 16:
        raise ValueError(f"a header of {length} bytes")
    text = f.read(length).decode("utf8" if version == (3, 0) else "latin1")
    d = ast.literal_eval(text)
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise ValueError("header keys")
    shape = d["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(x, int) and x >= 0 for x in shape):
        raise ValueError(f"shape {shape!r}")
    if not isinstance(d["descr"], str):
        raise ValueError(f"descr {d['descr']!r}")
    return shape, bool(d["fortran_order"]), np.dtype(d["descr"])
