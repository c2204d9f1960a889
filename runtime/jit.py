"""Generated source -> loaded module of numba kernels, cached in memory and on disk.

On disk, a module is ``<cache>/kiln_<hash>.py`` (the hash covers the source, Python and numba
versions) and numba caches its machine code beside it (``cache=True``), so a second process
compiles nothing. Files are written to a temporary name and renamed, so concurrent processes
never read half a file; a file whose content does not match its hash is rewritten; a numba
cache entry that fails to load is deleted and compiled again.

``KILN_CACHE_DIR`` moves the folder (default: ``$XDG_CACHE_HOME/kiln`` or ``~/.cache/kiln``);
``KILN_CACHE=0`` keeps everything in memory.

What the cache trusts: numba's index files are pickles and the modules are Python, so a file
planted in the folder would run in the next process. The folder is used only when it belongs
to this user and no one else may write it (as ssh treats its keys); otherwise Kiln warns once
and keeps kernels in memory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
import types
import warnings

from .files import write_atomic

_modules: dict[str, types.ModuleType] = {}
_lock = threading.Lock()


def cache_enabled() -> bool:
    return os.environ.get("KILN_CACHE", "1") not in ("0", "", "false")


class UntrustedCacheError(OSError):
    """The cache folder could be written by someone else."""


def cache_dir() -> str:
    """The cache folder, made private if new; ``UntrustedCacheError`` when another user owns
    it or may write it (it or numba's ``__pycache__`` inside)."""
    d = os.environ.get("KILN_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        d = os.path.join(base, "kiln")
    os.makedirs(d, mode=0o700, exist_ok=True)
    for folder in (d, os.path.join(d, "__pycache__")):
        try:
            st = os.stat(folder)
        except FileNotFoundError:
            continue
        if st.st_uid != os.getuid():
            raise UntrustedCacheError(f"{folder} belongs to user id {st.st_uid}, not to this "
                                      f"user ({os.getuid()})")
        if st.st_mode & 0o022:
            raise UntrustedCacheError(f"{folder} is writable by its group or by others (mode "
                                      f"{st.st_mode & 0o777:o}); chmod go-w it to use it")
    return d


_warned: set[str] = set()


def _untrusted(e: UntrustedCacheError) -> None:
    if str(e) not in _warned:
        _warned.add(str(e))
        warnings.warn(f"Kiln's kernel cache is not used: {e}; kernels stay in memory",
                      RuntimeWarning, stacklevel=3)


def source_key(source: str) -> str:
    import numba
    tag = f"{sys.version_info[:2]}|numba {numba.__version__}|{source}"
    return hashlib.sha256(tag.encode()).hexdigest()[:32]


def load_module(source: str) -> types.ModuleType:
    """Import the generated ``source`` (once per process; from the disk cache when warm)."""
    key = source_key(source)
    mod = _modules.get(key)
    if mod is not None:
        return mod
    with _lock:
        mod = _modules.get(key)
        if mod is None:
            if cache_enabled():
                try:
                    mod = _load_file(key, source)
                except UntrustedCacheError as e:
                    _untrusted(e)
                    mod = None
                except OSError:  # an unwritable cache folder or a full disk: work without
                    mod = None
            mod = mod or _load_memory(key, source)
            _modules[key] = mod
    return mod


def _load_memory(key: str, source: str) -> types.ModuleType:
    mod = types.ModuleType(f"kiln_{key}")
    exec(compile(source.replace("CACHE = True", "CACHE = False"), f"<kiln {key}>", "exec"),
         mod.__dict__)
    return mod


def _load_file(key: str, source: str) -> types.ModuleType:
    name = f"kiln_{key}"
    path = os.path.join(cache_dir(), name + ".py")
    try:
        with open(path) as fh:
            ok = fh.read() == source
    except OSError:
        ok = False
    if not ok:  # missing, truncated or corrupt: (re)write it
        write_atomic(path, source)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    mod.__kiln_path__ = path
    return mod


def drop_numba_cache(mod: types.ModuleType) -> None:
    """Delete numba's cached machine code for a module (used when it fails to load)."""
    path = getattr(mod, "__kiln_path__", None)
    if not path:
        return
    folder = os.path.join(os.path.dirname(path), "__pycache__")
    stem = os.path.splitext(os.path.basename(path))[0]
    if os.path.isdir(folder):
        for f in os.listdir(folder):
            if f.startswith(stem + "."):
                try:
                    os.unlink(os.path.join(folder, f))
                except OSError:
                    pass


def cache_stats(mod: types.ModuleType) -> dict:
    """Numba cache hits and misses over every kernel of a module (not the library functions
    it imports, which numba caches beside their own source)."""
    hits = misses = 0
    for v in vars(mod).values():
        if getattr(getattr(v, "py_func", None), "__module__", None) != mod.__name__:
            continue
        st = getattr(v, "stats", None)
        if st is not None and hasattr(st, "cache_hits"):
            hits += sum(st.cache_hits.values())
            misses += sum(st.cache_misses.values())
    return {"hits": hits, "misses": misses}
