"""The syntax side of autograph (framework/autograph.py): AST queries, and the rewriting of
``return`` statements that must not end the converted function early: inside ``if`` (the
code after the ``if`` moves into the branch that does not return) and inside loops (the
return value and a flag are set, the loop is left, and what follows runs only without the
flag), so each path ends by setting ``retval__``."""

from __future__ import annotations

import ast
import copy

RETVAL, DO_RETURN = "retval__", "do_return__"

# ----------------------------------------------------------------------------------------------
# AST helpers


def _names(node, ctx) -> set[str]:
    """Names used with ``ctx`` (ast.Load / ast.Store) in ``node``, not inside nested
    functions or classes."""
    out = set()
    stack = [node] if not isinstance(node, list) else list(node)
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name) and isinstance(n.ctx, ctx):
            out.add(n.id)
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name) and ctx is ast.Load:
            out.add(n.target.id)
        for c in ast.iter_child_nodes(n):  # a lambda's reads count: it runs in place
            if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                stack.append(c)
    return out


def _contains(node, kinds, stop=(ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                 ast.ClassDef)) -> bool:
    stack = list(node) if isinstance(node, list) else [node]
    while stack:
        n = stack.pop()
        if isinstance(n, kinds):
            return True
        stack += [c for c in ast.iter_child_nodes(n) if not isinstance(c, stop)]
    return False


LOOPS = (ast.For, ast.While, ast.AsyncFor)
FRAME_BUILTINS = {"super", "locals", "globals", "vars", "eval", "exec", "dir"}
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _jumps(stmts) -> bool:
    """A break/continue belonging to the loop around ``stmts``."""
    return _contains(stmts, (ast.Break, ast.Continue), DEFS + LOOPS)


def _always_returns(stmts) -> bool:
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, (ast.Return, ast.Raise)):
        return True
    return isinstance(last, ast.If) and _always_returns(last.body) and \
        _always_returns(last.orelse)


def _fold_returns(stmts: list) -> list:
    """Move the statements after an ``if`` that returns into its branches, so every
    ``return`` outside loops ends its path."""
    for i, s in enumerate(stmts):
        if isinstance(s, ast.If) and _contains(s, ast.Return, DEFS + LOOPS):
            rest = stmts[i + 1:]
            if rest and not _always_returns(s.body):
                s.body = s.body + copy.deepcopy(rest)
            if rest and not _always_returns(s.orelse):
                s.orelse = s.orelse + rest
            s.body, s.orelse = _fold_returns(s.body), _fold_returns(s.orelse)
            return stmts[:i] + [s]
    return stmts


def _returns_in_loops(stmts) -> bool:
    stack = list(stmts)
    while stack:
        n = stack.pop()
        if isinstance(n, LOOPS) and _contains(n.body, ast.Return, DEFS):
            return True
        stack += [c for c in ast.iter_child_nodes(n) if not isinstance(c, DEFS)]
    return False


def _loop_returns(stmts: list, in_loop: bool) -> list:
    """``return x`` inside a loop -> ``retval__ = x; do_return__ = True; break``. After such a
    loop the rest of the block runs only if ``not do_return__`` (in an enclosing loop:
    ``if do_return__: break``, which that loop's conversion turns into its own flag)."""
    out = []
    for i, s in enumerate(stmts):
        if isinstance(s, LOOPS) and _contains(s.body, ast.Return, DEFS):
            s.body = [n for b in _loop_returns(s.body, True) for n in _LoopReturn().run(b)]
            rest = _loop_returns(stmts[i + 1:], in_loop)
            flag = ast.Name(DO_RETURN, ast.Load())
            if in_loop:
                out += [s, ast.copy_location(ast.If(flag, [ast.Break()], []), s)] + rest
            else:
                out += [s] + ([ast.copy_location(ast.If(_call("not_", [flag]), rest, []),
                                                 rest[0])] if rest else [])
            return out
        if isinstance(s, ast.If):
            s.body, s.orelse = _loop_returns(s.body, in_loop), _loop_returns(s.orelse, in_loop)
        out.append(s)
    return out


class _LoopReturn(ast.NodeTransformer):
    def run(self, node) -> list:
        out = self.visit(node)
        return out if isinstance(out, list) else [out]

    def visit_Return(self, node):
        value = node.value or ast.Constant(None)
        return [ast.copy_location(ast.Assign([ast.Name(RETVAL, ast.Store())], value), node),
                ast.copy_location(ast.Assign([ast.Name(DO_RETURN, ast.Store())],
                                             ast.Constant(True)), node),
                ast.copy_location(ast.Break(), node)]

    def generic_visit(self, node):
        if isinstance(node, DEFS + LOOPS):
            return node
        return super().generic_visit(node)


class _Returns(ast.NodeTransformer):
    """``return x`` (outside loops and nested defs) -> ``retval__ = x``."""

    def visit_Return(self, node):
        value = node.value or ast.Constant(None)
        return ast.copy_location(ast.Assign([ast.Name(RETVAL, ast.Store())], value), node)

    def generic_visit(self, node):
        if isinstance(node, DEFS + LOOPS):
            return node
        return super().generic_visit(node)


def _call(fn: str, args, kw=None):
    return ast.Call(ast.Attribute(ast.Name("ag__", ast.Load()), fn, ast.Load()), list(args),
                    [ast.keyword(k, v) for k, v in (kw or {}).items()])


def _lazy(expr):
    return ast.Lambda(ast.arguments([], [], None, [], [], None, []), expr)


def rewrite_returns(fdef: ast.FunctionDef) -> list:
    """The body of ``fdef`` with every ``return`` inside ``if``s and loops turned into
    setting ``retval__`` (and ``do_return__``), ended by ``return ag__.ret(retval__)``;
    unchanged when only its last statements return."""
    body = fdef.body
    in_loops = _returns_in_loops(body)
    if in_loops:
        flag = ast.Assign([ast.Name(DO_RETURN, ast.Store())], ast.Constant(False))
        body = [ast.copy_location(flag, body[0])] + _loop_returns(body, False)
    if not in_loops and not any(_contains(s, ast.Return, DEFS + LOOPS) for s in body
                                if isinstance(s, ast.If)):
        return body
    body = [_Returns().visit(s) for s in _fold_returns(body)]
    body.append(ast.Return(_call("ret", [_call("ld", [_lazy(ast.Name(RETVAL, ast.Load())),
                                                      ast.Constant(RETVAL)])])))
    return [s if hasattr(s, "lineno") else ast.fix_missing_locations(ast.copy_location(s, fdef))
            for s in body]
