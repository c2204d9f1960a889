"""A ``Program`` as a file: a zip holding ``program.json`` (slots, steps, buffer plan, library
steps by op and attributes), ``kernels.py`` (the generated module) and each constant as an
``.npy`` entry (read with ``allow_pickle=False``). ``read`` returns the program unbound;
``runtime.load`` binds it, compiling nothing when the kernel cache is warm, so a fresh
process runs a program without the compiler.

A program holds code (its kernels run when it is loaded), so a file carries an HMAC of its
contents under a key private to this user (``<cache>/program.key``, mode 0600): ``read``
refuses a file this user's Kiln did not write, or one changed since, before parsing it.
Sizes are checked before anything is inflated; every damaged file is a ``ProgramFileError``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import zipfile
from dataclasses import fields

import numpy as np

from .control import LoopPlan
from .files import read_zip, write_atomic
from .jit import cache_dir
from .program import Program, Step

FORMAT = "kiln-program"
VERSION = 1
MAX_ENTRY_BYTES = 1 << 32     # one entry, inflated
MAX_TOTAL_BYTES = 1 << 34     # the whole file, inflated
_BOUND = {"fn", "fn_par", "fn_ser"}  # bound by runtime.load, never written


class ProgramFileError(ValueError):
    """A program file that is damaged, foreign or of another format version."""


# -- the key ----------------------------------------------------------------------------------
def _key() -> bytes:
    try:
        path = os.path.join(cache_dir(), "program.key")
    except OSError as e:
        raise ProgramFileError(f"no key to sign or check program files with: {e}") from None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path, "rb") as fh:
            key = fh.read()
        if len(key) == 32:
            return key
        raise ProgramFileError(f"{path}: the program signing key is damaged ({len(key)} "
                               f"bytes; expected 32); delete it to make a new one") from None
    key = os.urandom(32)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def _sign(entries: dict[str, bytes]) -> str:
    mac = hmac.new(_key(), digestmod=hashlib.sha256)
    for name in sorted(entries):
        mac.update(name.encode() + b"\0" + len(entries[name]).to_bytes(8, "little"))
        mac.update(entries[name])
    return mac.hexdigest()


# -- Program <-> JSON ---------------------------------------------------------------------------
def _shape(s) -> tuple:
    return tuple(s)


def _typed(pairs) -> list:
    return [[list(shape), np.dtype(d).name] for shape, d in pairs]


def _untyped(pairs) -> list:
    return [(_shape(shape), np.dtype(d)) for shape, d in pairs]


def _typed_buffers(buffers) -> list:
    return [[list(shape), np.dtype(t).name, first, last] for shape, t, first, last in buffers]


def _array_ref(a, arrays: list) -> int:
    arrays.append(np.asarray(a))
    return len(arrays) - 1


def _loop_to(plan: LoopPlan, arrays: list) -> dict:
    d = {f.name: getattr(plan, f.name) for f in fields(LoopPlan)}
    d["buffers"], d["scratch"] = _typed(plan.buffers), _typed(plan.scratch)
    d["constants"] = [_array_ref(c, arrays) for c in plan.constants]
    d["work"] = [list(w) for w in plan.work]
    d["carry_shapes"] = [list(s) for s in plan.carry_shapes]
    d["y_shapes"] = [list(s) for s in plan.y_shapes]
    d["y_dtypes"] = [np.dtype(t).name for t in plan.y_dtypes]
    return d


def _loop_from(d: dict, arrays: list) -> LoopPlan:
    d = dict(d)
    d["buffers"], d["scratch"] = _untyped(d["buffers"]), _untyped(d["scratch"])
    d["constants"] = [arrays[i] for i in d["constants"]]
    for k in ("work", "carry_shapes", "y_shapes"):
        d[k] = [_shape(s) for s in d[k]]
    d["y_dtypes"] = [np.dtype(t) for t in d["y_dtypes"]]
    return LoopPlan(**d)


def _step_to(st: Step, arrays: list) -> dict:
    d = {f.name: getattr(st, f.name) for f in fields(Step) if f.name not in _BOUND}
    d["out_shapes"] = [list(s) for s in st.out_shapes]
    d["out_dtypes"] = [np.dtype(t).name for t in st.out_dtypes]
    d["work"] = list(st.work)
    d["scratch"] = _typed(st.scratch)
    d["aligned"] = sorted(st.aligned)
    d["subprograms"] = [_program_to(p, arrays) for p in st.subprograms]
    d["loop"] = None if st.loop is None else _loop_to(st.loop, arrays)
    return d


def _step_from(d: dict, arrays: list) -> Step:
    d = dict(d)
    d["out_shapes"] = [_shape(s) for s in d["out_shapes"]]
    d["out_dtypes"] = [np.dtype(t) for t in d["out_dtypes"]]
    d["work"] = _shape(d["work"])
    d["scratch"] = _untyped(d["scratch"])
    d["aligned"] = set(d["aligned"])
    d["subprograms"] = [_program_from(p, arrays) for p in d["subprograms"]]
    d["loop"] = None if d["loop"] is None else _loop_from(d["loop"], arrays)
    return Step(**d)


def _program_to(p: Program, arrays: list) -> dict:
    return {"n_slots": p.n_slots, "params": p.params,
            "param_shapes": [list(s) for s in p.param_shapes], "results": p.results,
            "steps": [_step_to(st, arrays) for st in p.steps],
            "constants": {str(s): _array_ref(a, arrays) for s, a in p.constants.items()},
            "target": p.target, "buffers": _typed_buffers(p.buffers),
            "escaping": p.escaping, "segments": p.segments, "buckets": p.buckets}


def _program_from(d: dict, arrays: list) -> Program:
    return Program(d["n_slots"], d["params"], [_shape(s) for s in d["param_shapes"]],
                   d["results"], [_step_from(st, arrays) for st in d["steps"]],
                   {int(s): arrays[i] for s, i in d["constants"].items()}, d["target"],
                   buffers=[[_shape(s), np.dtype(t), int(a), int(b)]
                            for s, t, a, b in d["buffers"]], escaping=d["escaping"],
                   segments=[[str(n), int(a), int(b)] for n, a, b in d.get("segments", [])],
                   buckets=[[int(b) for b in bucket] for bucket in d.get("buckets", [])])


# -- the file -----------------------------------------------------------------------------------
def dumps(program: Program) -> bytes:
    """The program file's bytes (bound callables are not part of it)."""
    arrays: list = []
    meta = {"format": FORMAT, "version": VERSION, "program": _program_to(program, arrays)}
    entries = {"program.json": json.dumps(meta).encode(),
               "kernels.py": program.source.encode()}
    for i, a in enumerate(arrays):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
        entries[f"arrays/{i}.npy"] = buf.getvalue()
    entries["signature"] = _sign(entries).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():  # fixed times: the same program, the same bytes
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                       zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _entries(data: bytes, where: str) -> dict[str, bytes]:
    return read_zip(data, where, ProgramFileError, MAX_ENTRY_BYTES, MAX_TOTAL_BYTES)


def loads(data: bytes, where: str = "<bytes>") -> Program:
    """The program a ``dumps`` wrote, unbound (``runtime.load`` binds it)."""
    entries = _entries(data, where)
    signature = entries.pop("signature", b"").decode("ascii", "replace")
    if not hmac.compare_digest(signature, _sign(entries)):
        raise ProgramFileError(f"{where}: the signature does not match: the file was changed "
                               f"or written by another user's Kiln (programs hold code; "
                               f"only this user's own are loaded)")
    try:
        meta = json.loads(entries["program.json"])
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ProgramFileError(f"{where}: format {meta.get('format')!r} version "
                                   f"{meta.get('version')!r}; this Kiln reads {FORMAT!r} "
                                   f"version {VERSION}")
        n_arrays = sum(name.startswith("arrays/") for name in entries)
        arrays = [np.lib.format.read_array(io.BytesIO(entries[f"arrays/{i}.npy"]),
                                           allow_pickle=False) for i in range(n_arrays)]
        program = _program_from(meta["program"], arrays)
        program.source = entries["kernels.py"].decode()
    except ProgramFileError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        raise ProgramFileError(f"{where}: malformed program ({type(e).__name__}: {e})") \
            from None
    return program


def save(program: Program, path: str) -> None:
    """Write ``program`` to ``path`` (atomically: readers see the old file or the new)."""
    write_atomic(path, dumps(program))


def read(path: str) -> Program:
    size = os.path.getsize(path)
    if size > MAX_TOTAL_BYTES:
        raise ProgramFileError(f"{path}: {size} bytes; a program file is at most "
                               f"{MAX_TOTAL_BYTES}")
    with open(path, "rb") as fh:
        return loads(fh.read(), path)
