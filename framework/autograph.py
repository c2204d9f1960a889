"""Conversion of Python control flow on tensors (``autograph=True``, the default of
``@function``), as TensorFlow's AutoGraph, but never silently partial.

The function's source is parsed and rewritten: ``if``/``elif``/``else`` become calls of
``ag__.if_stmt``, ``while`` of ``ag__.while_stmt``, ``for`` of ``ag__.for_stmt``, each with
the branch or body as a nested function of the variables it changes that are used later.
At trace time these run as Python when the condition is a Python value and become
``cond``/``while_loop`` (framework/control_flow.py) when it is a tensor. ``break`` and
``continue`` become flags; a ``return`` inside ``if`` moves the code after the ``if`` into
the branch that does not return; a ``return`` inside a loop sets the return value and a
flag and leaves the loop, and the code after the loop runs only if the flag is unset.
``and``/``or``/``not`` work on tensors.

The rewritten code is compiled with the user's file name and line numbers, so errors and IR
locations point at the user's lines; ``to_code(f)`` shows it. Constructs that cannot become
graph control flow (``yield``, ``global``, a loop's ``else``) stay Python: if their
condition turns out to be a tensor, a typed error names the construct, the line and the
fix.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import sys
import textwrap
import threading
import types

from . import autograph_ops
from .autograph_ast import (
    DEFS,
    FRAME_BUILTINS,
    RETVAL,
    _call,
    _contains,
    _jumps,
    _lazy,
    _names,
    rewrite_returns,
)

_cache: dict = {}
_lock = threading.Lock()


def _tuple(names, ctx):
    return ast.Tuple([ast.Name(n, ctx()) for n in names], ctx())


def _args(names):
    return ast.arguments([], [ast.arg(n) for n in names], None, [], [], None, [])


def _def(name, params, body, ret_names):
    ret = ast.Return(_tuple(ret_names, ast.Load))
    return _fdef(name, params, (body or [ast.Pass()]) + [ret])


def _fdef(name, params, body):
    return ast.FunctionDef(name=name, args=_args(params), body=body, decorator_list=[])


def _current(names):
    """``(ag__.ld(lambda: a, 'a'), ...)``: each name's value, or Undefined."""
    return ast.Tuple([_call("ld", [_lazy(ast.Name(n, ast.Load())), ast.Constant(n)])
                      for n in names], ast.Load())


# ----------------------------------------------------------------------------------------------
# The converter


class _Converter(ast.NodeTransformer):
    def __init__(self):
        self.n = 0

    def fresh(self, kind):
        self.n += 1
        return f"{kind}__{self.n}"

    # -- liveness: which variables a statement's successors read --
    def block(self, stmts, live_out):
        """Convert a statement list; ``live_out`` holds names read after it."""
        live = set(live_out)
        outs = []
        for s in reversed(stmts):
            new = self.stmt(s, live)
            outs = (new if isinstance(new, list) else [new]) + outs
            kills = _names(s, ast.Store) if isinstance(s, (ast.Assign, ast.AnnAssign)) \
                else set()
            live = (live - kills) | _names(s, ast.Load)
        return outs

    def stmt(self, s, live):
        if isinstance(s, ast.If):
            return self.convert_if(s, live)
        if isinstance(s, ast.While):
            return self.convert_while(s, live)
        if isinstance(s, ast.For):
            return self.convert_for(s, live)
        if isinstance(s, (ast.With, ast.Try)):
            for field in ("body", "orelse", "finalbody"):
                if getattr(s, field, None):
                    setattr(s, field, self.block(getattr(s, field), live))
            if isinstance(s, ast.Try):
                for h in s.handlers:
                    h.body = self.block(h.body, live)
            return s
        if isinstance(s, DEFS):
            return s
        return self.expressions(s)

    def expressions(self, s):
        """``and``/``or``/``not`` on tensors; ``print`` and ``list.append`` checked."""
        return _Expressions().visit(s)

    def _unconvertible(self, s, kind, reason):
        s.test = ast.copy_location(_call("python_test", [
            self.expressions(s.test), ast.Constant(kind), ast.Constant(s.lineno),
            ast.Constant(reason)]), s.test)
        return s

    # -- if --
    def convert_if(self, s, live):
        if _contains(s, (ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal), DEFS):
            s.body, s.orelse = self.block(s.body, live), self.block(s.orelse, live)
            return self._unconvertible(s, "if", "it contains yield, global or nonlocal")
        if _contains(s, ast.Return, DEFS):
            s.body, s.orelse = self.block(s.body, live), self.block(s.orelse, live)
            return self._unconvertible(s, "if", "it contains a `return` inside a loop")
        if _jumps(s.body + s.orelse):
            s.body, s.orelse = self.block(s.body, live), self.block(s.orelse, live)
            return self._unconvertible(s, "if", "it contains `break` or `continue` of a loop "
                                                "that stays Python")
        stored = sorted(_names(s.body + s.orelse, ast.Store))  # the branches' parameters
        changed = [n for n in stored if n in live]                # their results
        body, orelse = self.block(s.body, live), self.block(s.orelse, live)
        t, f = self.fresh("if_true"), self.fresh("if_false")
        defs = [_def(t, stored, body, changed), _def(f, stored, orelse, changed)]
        call = _call("if_stmt", [self.expressions(s.test), ast.Name(t, ast.Load()),
                                 ast.Name(f, ast.Load()), _current(stored),
                                 ast.Constant(tuple(changed)), ast.Constant(s.lineno)])
        target = _tuple(changed, ast.Store) if changed else ast.Name("_", ast.Store())
        out = defs + [ast.Assign([target], call)]
        return [_located(n, s) for n in out]

    # -- loops --
    def _loop_parts(self, s, live):
        """Rewrite break/continue into flags; returns (body, flags, loop variables)."""
        brk, cnt = (self.fresh("break_"), self.fresh("continue_")) if _jumps(s.body) else \
            (None, None)
        body = s.body
        if brk:
            body = [ast.Assign([ast.Name(cnt, ast.Store())], ast.Constant(False))] + \
                _guard(body, brk, cnt)
        # What the loop changes and reads, from the source before nested conversion (the
        # nested functions it creates hide their reads and writes).
        changed = _names(body, ast.Store) - ({cnt} if cnt else set())
        if isinstance(s, ast.For):
            changed -= _names(s.target, ast.Store)
        read_first = _read_before_write(body) | (_names(s.test, ast.Load)
                                                 if isinstance(s, ast.While) else set())
        carried = sorted(changed & (live | read_first | ({brk} if brk else set())))
        body = self.block(body, live | _names(s, ast.Load) | ({brk} if brk else set()))
        return body, brk, carried

    def convert_while(self, s, live):
        if s.orelse or _contains(s.body, (ast.Return, ast.Yield, ast.YieldFrom, ast.Global,
                                          ast.Nonlocal), DEFS):
            s.body = self.block(s.body, live | _names(s, ast.Load))
            return self._unconvertible(s, "while", "it has an `else` clause or contains "
                                                   "yield, global or nonlocal")
        body, brk, carried = self._loop_parts(s, live)
        c, b = self.fresh("loop_test"), self.fresh("loop_body")
        test = self.expressions(s.test)
        if brk:
            test = _call("and_", [_lazy(_call("not_", [ast.Name(brk, ast.Load())])),
                                  _lazy(test)])
        defs = [_fdef(c, carried, [ast.Return(test)]),
                _def(b, carried, body, carried)]
        init = [ast.Assign([ast.Name(brk, ast.Store())], ast.Constant(False))] if brk else []
        call = _call("while_stmt", [ast.Name(c, ast.Load()), ast.Name(b, ast.Load()),
                                    _current(carried), ast.Constant(tuple(carried)),
                                    ast.Constant(s.lineno)])
        target = _tuple(carried, ast.Store) if carried else ast.Name("_", ast.Store())
        out = init + defs + [ast.Assign([target], call)]
        return [_located(n, s) for n in out]

    def convert_for(self, s, live):
        if s.orelse or _contains(s.body, (ast.Return, ast.Yield, ast.YieldFrom, ast.Global,
                                          ast.Nonlocal), DEFS):
            s.body = self.block(s.body, live | _names(s, ast.Load))
            s.iter = _call("python_iter", [self.expressions(s.iter), ast.Constant(s.lineno)])
            return s
        body, brk, carried = self._loop_parts(s, live)
        item, b = self.fresh("item"), self.fresh("loop_body")
        body = [ast.Assign([s.target], ast.Name(item, ast.Load()))] + body
        it = s.iter
        if isinstance(it, ast.Call) and (isinstance(it.func, ast.Name) and it.func.id == "range"
                                         or isinstance(it.func, ast.Attribute)
                                         and it.func.attr == "range"):
            builtin = isinstance(it.func, ast.Name)
            it = _call("range_spec", [ast.Constant(builtin)] + it.args)
        else:
            it = self.expressions(it)
        defs = [_def(b, [item] + carried, body, carried)]
        init = [ast.Assign([ast.Name(brk, ast.Store())], ast.Constant(False))] if brk else []
        call = _call("for_stmt", [it, ast.Name(b, ast.Load()), _current(carried),
                                  ast.Constant(tuple(carried)), ast.Constant(s.lineno),
                                  ast.Constant(brk)])
        target = _tuple(carried, ast.Store) if carried else ast.Name("_", ast.Store())
        out = init + defs + [ast.Assign([target], call)]
        return [_located(n, s) for n in out]


def _located(node, s):
    """A statement made for ``s``, at ``s``'s first line (so tracebacks and IR locations
    name the line of the ``if``/``while``/``for``, not the end of its body)."""
    ast.copy_location(node, s)
    node.end_lineno, node.end_col_offset = s.lineno, s.col_offset
    return ast.fix_missing_locations(node)


def _read_before_write(stmts, written=frozenset()) -> set[str]:
    """Names some statement reads before an earlier statement of ``stmts`` (in source
    order) surely assigned them; a ``for`` assigns its target before its body reads."""
    written, out = set(written), set()
    for s in stmts:
        if isinstance(s, ast.For):
            out |= _names(s.iter, ast.Load) - written
            out |= _read_before_write(s.body, written | _names(s.target, ast.Store))
        elif isinstance(s, (ast.If, ast.While)):
            out |= _names(s.test, ast.Load) - written
            out |= _read_before_write(s.body, written) | _read_before_write(s.orelse, written)
        else:
            out |= _names(s, ast.Load) - written
        if isinstance(s, (ast.Assign, ast.AnnAssign)):
            written |= _names(s, ast.Store)
    return out


def _guard(stmts, brk, cnt) -> list:
    """``break``/``continue`` -> set a flag; later statements run only if neither is set."""
    out = []
    for i, s in enumerate(stmts):
        if isinstance(s, (ast.Break, ast.Continue)):
            flag = brk if isinstance(s, ast.Break) else cnt
            out.append(ast.copy_location(ast.Assign([ast.Name(flag, ast.Store())],
                                                    ast.Constant(True)), s))
            return out
        if isinstance(s, ast.If) and _jumps([s]):
            s.body, s.orelse = _guard(s.body, brk, cnt), _guard(s.orelse, brk, cnt)
            out.append(s)
            rest = stmts[i + 1:]
            if rest:
                test = _call("not_", [_call("or_", [_lazy(ast.Name(brk, ast.Load())),
                                                    _lazy(ast.Name(cnt, ast.Load()))])])
                out.append(ast.copy_location(ast.If(test, _guard(rest, brk, cnt), []),
                                             rest[0]))
            return out
        out.append(s)
    return out


class _Expressions(ast.NodeTransformer):
    def visit_BoolOp(self, node):
        self.generic_visit(node)
        fn = "and_" if isinstance(node.op, ast.And) else "or_"
        expr = node.values[-1]
        for v in reversed(node.values[:-1]):
            expr = _call(fn, [_lazy(v), _lazy(expr)])
        return ast.copy_location(expr, node)

    def visit_IfExp(self, node):
        self.generic_visit(node)
        return ast.copy_location(_call("if_exp", [node.test, _lazy(node.body),
                                                  _lazy(node.orelse)]), node)

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return ast.copy_location(_call("not_", [node.operand]), node)
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in FRAME_BUILTINS:
            return node  # they look at the calling frame: call them in place
        if isinstance(node.func, ast.Name) and node.func.id == "print":
            node.args = [ast.Constant(node.lineno)] + node.args
            node.func = ast.Attribute(ast.Name("ag__", ast.Load()), "print_", ast.Load())
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "append" and \
                len(node.args) == 1 and not node.keywords:
            return ast.copy_location(_call("list_append", [node.func.value, node.args[0],
                                                           ast.Constant(node.lineno)]), node)
        else:  # the callee is converted too, when it is the user's code
            node.args = [node.func] + node.args
            node.func = ast.Attribute(ast.Name("ag__", ast.Load()), "call", ast.Load())
        return node

    def visit_Lambda(self, node):
        return node

    def visit_FunctionDef(self, node):
        return node


# ----------------------------------------------------------------------------------------------
# Entry points


def _parse(src: str):
    """(tree, lines added in front) for a function's source; a lambda on a continuation line
    parses as an expression once what closes the enclosing call is trimmed."""
    try:
        return ast.parse(src), 0
    except SyntaxError:
        pass
    text = "\n".join(re.sub(r"#[^'\"]*$", "", line) for line in src.splitlines()).strip()
    for _ in range(8):
        try:
            return ast.parse(f"(\n{text}\n)"), 1
        except SyntaxError:
            if not text or text[-1] not in "),]}":
                return None
            text = text[:-1].rstrip()
    return None


def _source_tree(fn):
    """(module, the function's def, file) from the function's own code object (a wrapper's
    ``__wrapped__`` is not followed); a lambda becomes a def returning its expression when
    its line holds no other lambda with its parameters; None when there is no source."""
    code = fn.__code__
    try:
        src = textwrap.dedent(inspect.getsource(code))
        file = inspect.getsourcefile(code) or code.co_filename
        first = inspect.getsourcelines(code)[1]
    except (OSError, TypeError):
        return None
    tree = _parse(src)
    if tree is None:
        return None
    tree, shift = tree
    ast.increment_lineno(tree, first - 1 - shift)
    if code.co_name == "<lambda>":
        names = list(code.co_varnames[:code.co_argcount])
        found = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda) and
                 n.lineno == code.co_firstlineno and [a.arg for a in n.args.args] == names]
        if len(found) != 1:
            return None
        lam = found[0]
        fdef = ast.copy_location(ast.FunctionDef(
            name=LAMBDA, args=lam.args, body=[ast.copy_location(ast.Return(lam.body), lam)],
            decorator_list=[]), lam)
        return ast.Module([fdef], []), fdef, file
    fdef = tree.body[0] if tree.body else None
    if not isinstance(fdef, ast.FunctionDef) or fdef.name != code.co_name:
        return None
    return tree, fdef, file


def _convert_def(fdef: ast.FunctionDef) -> ast.FunctionDef:
    fdef.decorator_list = []
    fdef.body = _Converter().block(rewrite_returns(fdef), {RETVAL})
    return ast.fix_missing_locations(fdef)


LAMBDA = "lambda__"  # a converted lambda's def (named <lambda> again once compiled)
_GENERATED = re.compile(r"(if_true|if_false|loop_body|loop_test)__\d+|lambda__")


def _user_names(code: types.CodeType, name: str, qualname: str) -> types.CodeType:
    """The converted code with the user's function name on the functions the conversion
    made (branches, loop bodies), so tracebacks show only the user's names and lines."""
    consts = tuple(_user_names(c, name, qualname) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    if _GENERATED.fullmatch(code.co_name) or code.co_name == name:
        return code.replace(co_consts=consts, co_name=name, co_qualname=qualname)
    return code.replace(co_consts=consts)


_LIBRARY_DIRS = tuple({os.path.realpath(p) + os.sep for p in (
    sys.prefix, sys.base_prefix, os.path.dirname(os.__file__),
    *(os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep + d
      for d in ("framework", "compiler", "runtime")))})


def is_user_code(fn) -> bool:
    """A Python function (or method) from the user's files: not Kiln's own modules, the
    standard library or installed packages."""
    fn = getattr(fn, "__func__", fn)
    if not isinstance(fn, types.FunctionType):
        return False
    return not os.path.realpath(fn.__code__.co_filename).startswith(_LIBRARY_DIRS)


def convert(fn):
    """The converted version of ``fn`` (a function or bound method); ``fn`` itself when it
    has no source (builtins, lambdas typed at a prompt) or no control flow to convert."""
    if isinstance(fn, types.MethodType):
        inner = convert(fn.__func__)
        return types.MethodType(inner, fn.__self__) if inner is not fn.__func__ else fn
    if not isinstance(fn, types.FunctionType):
        return fn
    code = fn.__code__
    with _lock:
        hit = _cache.get(code)
    if hit is None:
        parsed = _source_tree(fn)
        if parsed is None or not _contains(parsed[1].body, (ast.If, ast.While, ast.For,
                                                             ast.BoolOp, ast.UnaryOp,
                                                             ast.Call)):
            hit = (None, None)
        else:
            tree, fdef, file = parsed
            fdef = _convert_def(fdef)
            free = list(code.co_freevars)
            factory = _fdef("__factory", ["ag__"] + free,
                            [fdef, ast.Return(ast.Name(fdef.name, ast.Load()))])
            module = ast.fix_missing_locations(ast.Module([ast.copy_location(factory, fdef)],
                                                          []))
            compiled = compile(module, file, "exec")
            fcode = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
            inner = next(c for c in fcode.co_consts if isinstance(c, types.CodeType)
                         and c.co_name == fdef.name)
            hit = (_user_names(inner, code.co_name, code.co_qualname), ast.unparse(fdef))
        with _lock:
            _cache[code] = hit
    inner, _ = hit
    if inner is None:
        return fn
    cells = dict(zip(code.co_freevars, fn.__closure__ or ()))
    closure = tuple(cells[n] if n in cells else types.CellType(autograph_ops)
                    for n in inner.co_freevars)
    out = types.FunctionType(inner, fn.__globals__, fn.__name__, fn.__defaults__, closure)
    out.__kwdefaults__ = fn.__kwdefaults__
    out.__dict__.update(fn.__dict__)
    out.__wrapped_original__ = fn
    return out


def to_code(f) -> str:
    """The source of ``f`` after conversion (``f`` a function, method or ``@function``)."""
    fn = getattr(f, "python_function", f)
    fn = getattr(fn, "__func__", fn)
    convert(fn)
    with _lock:
        hit = _cache.get(fn.__code__)
    if hit is not None and hit[1] is not None:
        return hit[1] + "\n"
    try:  # nothing to convert: the function as written
        return textwrap.dedent(inspect.getsource(fn.__code__))
    except (OSError, TypeError):
        from compiler.errors import SignatureError
        raise SignatureError("autograph.to_code", f"the source of {fn.__qualname__} is not "
                             f"available (defined at a prompt or by exec?)") from None
