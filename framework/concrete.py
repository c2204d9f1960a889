"""``ConcreteFunction``: one trace of a Python function — its graph, how to bind arguments,
captured variables and tensors, and where assignments are written back.

Until the compiler lands, calls run through the reference interpreter."""

from __future__ import annotations

import threading
import time

import numpy as np

from compiler.errors import SignatureError
from compiler.interpret import bind_dims, run
from compiler.printer import print_graph, to_dot
from runtime.program import execute

from . import config, host_calls, nest, placement, tracing
from .debugging import active_profile
from .errors import DeviceError, TracingError
from .specs import STATIC, VARIABLE, as_array, leaf_kind, leaf_spec, symbolic_types
from .tensor import Tensor
from .variables import Variable

STAGES = ("traced", "optimized", "fused", "kernels")


class ConcreteFunction:
    """A traced graph with a fixed input signature.

    ``ir("traced")`` returns the IR text; ``graph`` is the IR graph; ``stats`` holds trace
    statistics. Call it with the same arguments as the function it came from.
    """

    def __init__(self, name, graph, param_sources, writes, out_structure, out_leaves, specs,
                 paths, static_key, created_variables, stats, calls=()):
        self.name = name
        self.graph = graph
        self._param_sources = param_sources    # per graph param: ("arg"|"argvar", leaf
        #                                        index) or ("var"|"tensor", the capture)
        self._writes = writes                  # (result index, ("var", v) | ("argvar", i))
        self._out_structure = out_structure
        self._out_leaves = out_leaves          # per output leaf: ("result", i) | ("py", obj)
        self.specs = specs
        self.paths = paths
        self.static_key = static_key
        self.variables = created_variables
        self.stats = stats
        self._compiled: dict = {}   # device -> compiled program
        self._host_calls = calls  # run after the program (host_calls.py)
        self._envs: dict = {}       # argument shapes -> bound symbolic dims
        self._compile_lock = threading.Lock()
        self._single = (not writes and len(out_leaves) == 1 and out_leaves[0][0] == "result"
                        and not isinstance(out_structure, (dict, list, tuple)))

    # -- inspection --
    @property
    def structured_input_signature(self) -> dict:
        return {p: s for p, s in zip(self.paths, self.specs) if s is not None}

    @property
    def captured_variables(self) -> list:
        return [s[1] for s in self._param_sources if s[0] == "var"]

    def ir(self, stage: str = "traced") -> str:
        """The program at ``stage`` as text: "traced", "optimized" (after simplify, cse,
        layout, dce, licm), "fused" (kernels with the ops they absorbed, why neighbours were
        not fused, and where each all_reduce starts) or "kernels" (the generated numba source)."""
        if stage not in STAGES:
            raise ValueError(f"ir: unknown stage {stage!r}; available: {', '.join(STAGES)}")
        if stage == "traced":
            return print_graph(self.graph)
        compiled = self.compiled()
        return compiled.source if stage == "kernels" else print_graph(compiled.stages[stage])

    def _variable_aliases(self) -> dict[int, int]:
        """Result index -> parameter index of the variable it updates."""
        out = {}
        for i, target in self._writes:
            for p, source in enumerate(self._param_sources):
                if source == target or (target[0] == "var" and source[0] == "var"
                                        and source[1] is target[1]):
                    out[i] = p
        return out

    def compiled(self, device: str | None = None):
        """Compile for ``device`` (default: the current one) on first use, thread-safely;
        later calls return the same program."""
        device = device or placement.current()
        done = self._compiled.get(device)
        if done is None:
            with self._compile_lock:
                done = self._compiled.get(device)
                if done is None:
                    from compiler.codegen.compile import compile_graph

                    from .debugging import stage_dumper
                    if device == "cuda":
                        from runtime.cuda import missing
                        why = missing()
                        if why is not None:
                            raise DeviceError(f"@function {self.name}", f"CUDA was requested "
                                              f"but cannot run here: {why}", tracing.where())
                    t0 = time.perf_counter()
                    done = compile_graph(self.graph, dump=stage_dumper(self),
                                         aliases=self._variable_aliases(), target=device)
                    self.stats["compile_s"] = time.perf_counter() - t0
                    self.stats.update(done.stats)
                    self._compiled[device] = done
        return done

    def cost(self, *args, **sizes) -> dict:
        """FLOPs, bytes moved and peak memory of the compiled program, before running it:
        give example arguments (``cf.cost(x)``) or the symbolic sizes (``cf.cost(N=256)``)."""
        from runtime.program import cost
        env = dict(sizes)
        if args:  # bind the sizes from example arguments, as a call would
            from compiler.interpret import bind_dims
            tensors = [x for x in nest.flatten(list(args)) if leaf_kind(x) is not STATIC]
            specs = [s for s in self.specs if s is not None]
            arrays = [as_array(x, s) for x, s in zip(tensors, specs)]
            env = bind_dims(self.graph.params[:len(arrays)], arrays) | env
        missing = sorted({s for p in self.graph.params for s in p.type.symbols()} - set(env))
        if missing:
            raise ValueError(f"cost: give the size of {', '.join(missing)} (e.g. "
                             f"cost({missing[0]}=256)) or example arguments")
        return cost(self.compiled().program, env)

    def to_dot(self) -> str:
        """The traced graph in Graphviz DOT."""
        return to_dot(self.graph)

    def __repr__(self):
        sig = ", ".join(f"{p}: {s.describe()}" for p, s in zip(self.paths, self.specs)
                        if s is not None)
        return f"<ConcreteFunction {self.name}({sig})>"

    # -- calling --
    def accepts(self, leaves, static_key) -> bool:
        if static_key != self.static_key:
            return False
        for x, s, path in zip(leaves, self.specs, self.paths):
            if s is not None:
                ls = leaf_spec(x, path)
                if not s.is_compatible_with(tuple(ls.shape), ls.dtype):
                    return False
        return True

    def call_leaves(self, leaves):
        compiled = config.functions_compiled()
        device = placement.current() if compiled else "cpu"
        memory = None
        if device == "cuda":
            from runtime.cuda import MEMORY as memory
        variables = {}  # param index -> the variable whose buffer it is
        arrays = []
        for kind, ref in self._param_sources:
            if kind == "arg":
                x = leaves[ref]
                arrays.append(x._host if type(x) is Tensor and x._host is not None and
                              memory is None else as_array(x, self.specs[ref],
                                                           memory is not None))
                continue
            var = leaves[ref] if kind == "argvar" else ref
            if isinstance(var, Variable):
                variables[len(arrays)] = var
                arrays.append(var._value if memory is None else var._device_array(memory))
            else:  # a captured eager tensor
                arrays.append(var._value)
        try:
            if compiled:
                shapes = tuple([a.shape for a in arrays])
                env = self._envs.get(shapes)
                if env is None:  # typed errors on bad shapes; the same shapes bind the same
                    env = bind_dims(self.graph.params, arrays)
                    if len(self._envs) > 64:  # many batch sizes: keep the cache small
                        self._envs.clear()
                    self._envs[shapes] = env
                outs = execute(self.compiled(device).program, arrays, env=env,
                               profile=active_profile(), memory=memory)
            else:
                outs = run(self.graph, arrays)
        except SignatureError as e:
            raise e.with_location(tracing.where()) from None
        if self._host_calls:
            host_calls.after_call(self._host_calls, outs,
                                  np.asarray if memory is None else memory.host)
        if memory is None and not self._writes and not any(
                o is arrays[i] for i in variables for o in outs):
            # the common case: fresh result arrays (none of them a variable's buffer)
            if self._single:
                return Tensor(outs[self._out_leaves[0][1]])
            results = [Tensor(o) for o in outs]
            flat = [results[ref] if kind == "result" else ref
                    for kind, ref in self._out_leaves]
            return nest.pack_sequence_as(self._out_structure, flat)
        var_buffers = {id(a) for i, a in enumerate(arrays) if i in variables}
        for i, (kind, ref) in self._writes:
            var = leaves[ref] if kind == "argvar" else ref
            if memory is not None:  # the new value stays on the device
                var._device_written(outs[i], memory)
            elif outs[i] is not var._value:  # kernels may have written it in place already
                with var._lock:
                    var._value[...] = outs[i]
        if memory is not None:
            results = self._device_results(outs, arrays, variables, leaves, memory)
        else:  # the results the caller sees (a variable's new value is not one of them)
            results = {ref: Tensor(outs[ref].copy() if id(outs[ref]) in var_buffers else
                                   outs[ref]) for kind, ref in self._out_leaves
                       if kind == "result"}
        flat = [results[ref] if kind == "result" else ref for kind, ref in self._out_leaves]
        return nest.pack_sequence_as(self._out_structure, flat)

    def _device_results(self, outs, arrays, variables, leaves, memory) -> list:
        """Results of a CUDA call stay on the device (runtime Buffers the tensors hold); a
        buffer the call did not make for its result comes back as a host copy."""
        kept = [a for a in arrays if memory.is_device(a)] + \
            [v._store.device for v in variables.values()] + \
            [(leaves[ref] if kind == "argvar" else ref)._store.device
             for _, (kind, ref) in self._writes]
        return [Tensor(r) if isinstance(r, np.ndarray) else Tensor(buffer=r)
                for r in memory.results(outs, kept)]


def trace_function(fn, name, bound_args: dict, leaves, paths, specs, static_key,
                   allow_variable_creation: bool, groups=None):
    """Run ``fn`` once with symbolic tensors and return its ConcreteFunction."""
    t0 = time.perf_counter()
    trace = tracing.Trace(name, allow_variable_creation)
    sources: list = []
    types = symbolic_types(specs, groups)
    with tracing.active(trace):
        sym_leaves = []
        for i, (x, ty, path) in enumerate(zip(leaves, types, paths)):
            kind = leaf_kind(x)
            if kind is STATIC:
                sym_leaves.append(x)
                continue
            p = trace.builder.param(path, ty)
            if kind is VARIABLE:
                trace.var_params[id(x)] = (x, p)
                trace.var_values[id(x)] = Tensor(sym=p, trace=trace)
                trace.var_order.append(x)
                sources.append(("argvar", i))
                sym_leaves.append(x)
            else:
                sources.append(("arg", i))
                sym_leaves.append(Tensor(sym=p, trace=trace))
        args = nest.pack_sequence_as(list(bound_args.values()), sym_leaves)
        outputs = _call_bound(fn, bound_args, args)
        results, out_leaves = [], []
        for leaf in nest.flatten(outputs):
            if isinstance(leaf, Variable):
                leaf = leaf._read()
            if isinstance(leaf, Tensor):
                if not leaf.is_symbolic:
                    leaf = Tensor(sym=trace.capture_tensor(leaf), trace=trace)
                elif leaf._trace is not trace:
                    raise TracingError(f"@function {name}", "returned a tensor from another "
                                       "trace")
                out_leaves.append(("result", len(results)))
                results.append(leaf._sym)
            else:
                out_leaves.append(("py", leaf))
        writes = []
        for var in trace.var_order:
            cur = trace.var_values[id(var)]
            _, param = trace.var_params[id(var)]
            if cur._sym != param:
                target = next((("argvar", i) for i, x in enumerate(leaves) if x is var),
                              ("var", var))
                writes.append((len(results), target))
                results.append(cur._sym)
        calls = host_calls.results(trace, results)
    graph = trace.builder.build(results)
    sources = _all_sources(trace, graph, sources)
    stats = {"trace_time_s": time.perf_counter() - t0, "nodes": len(graph.nodes),
             "params": len(graph.params), "results": len(graph.results)}
    structure = nest.map_structure(lambda _: None, outputs)  # drop the symbolic tensors
    return ConcreteFunction(name, graph, sources, writes, structure, out_leaves, specs, paths,
                            static_key, trace.created_variables, stats, calls)


def _all_sources(trace, graph, arg_sources):
    """Param sources in graph order: arguments first, then captures as they were made."""
    by_name = {}
    for var, p in trace.var_params.values():
        by_name.setdefault(p.name, ("var", var))
    for t, p in trace.tensor_captures:
        by_name[p.name] = ("tensor", t)
    out = list(arg_sources)
    for p in graph.params[len(arg_sources):]:
        out.append(by_name[p.name])
    return out


def _call_bound(fn, bound_args: dict, args):
    """Call ``fn`` with the bound arguments replaced by ``args`` (same order)."""
    import inspect
    sig = inspect.signature(fn)
    pos, kw = [], {}
    for (name, _), value in zip(bound_args.items(), args):
        p = sig.parameters[name]
        if p.kind is p.VAR_POSITIONAL:
            pos.extend(value)
        elif p.kind is p.VAR_KEYWORD:
            kw.update(value)
        elif p.kind is p.KEYWORD_ONLY:
            kw[name] = value
        else:
            pos.append(value)
    return fn(*pos, **kw)

