"""The float32 forms of mathlib.py (exp, log, tanh, sigmoid, erf) as LLVM IR, for the native
backend: the same range reductions, polynomials and edge handling, written with llvmlite's
builder as internal always-inline functions, so the loop vectorizer sees straight-line
float code (libm calls are scalar: a gelu chain over 1M float32 took 30 ms through libm
against 1 ms through these). Multiplies and adds may contract to FMAs, as in numba's
kernels, where the errors stated in mathlib.py were measured; tests/runtime/test_mathlib.py
measures both forms against the same bounds.
"""

from __future__ import annotations

from llvmlite import ir

F32, I32 = ir.FloatType(), ir.IntType(32)
# tanh(x) / x ~ P(x^2) / Q(x^2) on [0, 9], fitted for minimum relative error (iteratively
# reweighted least squares in float64, coefficients rounded to float32); mathlib.py uses them.
TANH_P = (1.0, 0.13396865129470825, 0.0035142782144248486, 2.091185342578683e-05,
          1.3765363959805654e-08)
TANH_Q = (1.0, 0.4673019051551819, 0.025948401540517807, 0.00033159926533699036,
          7.946511004774948e-07)
_C = ("contract",)


class _F:
    """Float32 arithmetic on a builder, so the forms read as formulas."""

    def __init__(self, module: ir.Module, b: ir.IRBuilder):
        self.m, self.b = module, b

    def c(self, v):
        return F32(float(v)) if not isinstance(v, ir.Value) else v

    def add(self, x, y):
        return self.b.fadd(self.c(x), self.c(y), flags=_C)

    def sub(self, x, y):
        return self.b.fsub(self.c(x), self.c(y), flags=_C)

    def mul(self, x, y):
        return self.b.fmul(self.c(x), self.c(y), flags=_C)

    def div(self, x, y):
        return self.b.fdiv(self.c(x), self.c(y))

    def poly(self, x, coefs):
        """coefs[0] * x**n + ... + coefs[n] (Horner)."""
        acc = self.c(coefs[0])
        for k in coefs[1:]:
            acc = self.add(self.mul(acc, x), k)
        return acc

    def call(self, name, *args):
        fn = self.m.globals.get(f"llvm.{name}.f32") or ir.Function(
            self.m, ir.FunctionType(F32, [F32] * len(args)), name=f"llvm.{name}.f32")
        return self.b.call(fn, [self.c(a) for a in args])

    def clamp(self, x, lo, hi):
        return self.call("minnum", self.call("maxnum", x, lo), hi)

    def cmp(self, op, x, y):
        return self.b.fcmp_ordered(op, self.c(x), self.c(y))

    def pick(self, cond, x, y):
        return self.b.select(cond, self.c(x), self.c(y))

    def keep_nan(self, x, y):
        return self.b.select(self.b.fcmp_unordered("uno", x, x), x, y)

    def pow2(self, k):
        """2**k for an i32 k in [-126, 127]."""
        return self.b.bitcast(self.b.shl(self.b.add(k, I32(127)), I32(23)), F32)


def _exp(f: _F, x):
    xc = f.clamp(x, -104.0, 88.8)
    k = f.call("floor", f.add(f.mul(xc, 1.44269504), 0.5))
    r = f.sub(f.sub(xc, f.mul(k, 0.693359375)), f.mul(k, -2.12194440e-4))
    z = f.mul(r, r)
    p = f.poly(r, [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                   1.6666665459e-1, 5.0000001201e-1])
    y = f.add(f.add(f.mul(p, z), r), 1.0)
    ki = f.b.fptosi(k, I32)
    k1 = f.b.ashr(ki, I32(1))  # split 2**k so both halves stay normal
    y = f.mul(f.mul(y, f.pow2(k1)), f.pow2(f.b.sub(ki, k1)))
    y = f.pick(f.cmp(">", x, 88.72283), float("inf"), y)
    return f.keep_nan(x, y)


def _log(f: _F, x):
    b = f.b
    small = f.cmp("<", x, 1.17549435e-38)
    xs = f.pick(small, f.mul(x, 8388608.0), x)  # denormals: scale by 2**23
    bits = b.bitcast(xs, I32)
    e = b.sub(b.and_(b.lshr(bits, I32(23)), I32(0xFF)), I32(126))
    m = b.bitcast(b.or_(b.and_(bits, I32(0x007FFFFF)), I32(0x3F000000)), F32)
    e = b.select(small, b.sub(e, I32(23)), e)
    lo = f.cmp("<", m, 0.70710678)
    e = b.select(lo, b.sub(e, I32(1)), e)
    m = f.pick(lo, f.sub(f.add(m, m), 1.0), f.sub(m, 1.0))
    z = f.mul(m, m)
    p = f.mul(f.mul(f.poly(m, [7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1,
                               -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
                               2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1]), m), z)
    fe = b.sitofp(e, F32)
    y = f.add(f.add(f.sub(f.add(p, f.mul(fe, -2.12194440e-4)), f.mul(0.5, z)), m),
              f.mul(fe, 0.693359375))
    y = f.pick(f.cmp("==", x, 0.0), float("-inf"), y)
    y = f.pick(f.cmp("<", x, 0.0), float("nan"), y)
    y = f.pick(f.cmp("==", x, float("inf")), x, y)
    return f.keep_nan(x, y)


def _tanh(f: _F, x):
    xc = f.clamp(x, -9.0, 9.0)
    z = f.mul(xc, xc)
    num = f.poly(z, list(reversed(TANH_P)))
    den = f.poly(z, list(reversed(TANH_Q)))
    y = f.clamp(f.div(f.mul(xc, num), den), -1.0, 1.0)
    return f.keep_nan(x, y)


def _sigmoid(f: _F, x):
    e = _exp(f, f.b.fneg(f.call("fabs", x)))
    one_plus = f.add(1.0, e)
    y = f.pick(f.cmp(">=", x, 0.0), f.div(1.0, one_plus), f.div(e, one_plus))
    return f.keep_nan(x, y)


def _erf(f: _F, x):
    a = f.call("fabs", x)
    z = f.mul(x, x)
    near = f.mul(x, f.poly(z, [7.853861353153693e-5, -8.010193625184903e-4,
                               5.188327685732524e-3, -2.685381193529856e-2,
                               1.128358514861418e-1, -3.761262582423300e-1,
                               1.128379165726710]))
    t = f.div(1.0, f.add(1.0, f.mul(0.5, a)))
    p = f.add(f.sub(f.mul(f.b.fneg(a), a), 1.26551223),
              f.mul(t, f.poly(t, [0.17087277, -0.82215223, 1.48851587, -1.13520398,
                                  0.27886807, -0.18628806, 0.09678418, 0.37409196,
                                  1.00002368])))
    far = f.sub(1.0, f.mul(t, _exp(f, p)))
    far = f.pick(f.cmp("<", x, 0.0), f.b.fneg(far), far)
    y = f.pick(f.cmp("<", a, 1.0), near, far)
    return f.keep_nan(x, y)


FORMS = {"exp": _exp, "log": _log, "tanh": _tanh, "sigmoid": _sigmoid, "erf": _erf}


def function(module: ir.Module, name: str) -> ir.Function:
    """``float @kiln_<name>_f32(float)`` in ``module`` (defined once, internal, inlined)."""
    fname = f"kiln_{name}_f32"
    fn = module.globals.get(fname)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(F32, [F32]), name=fname)
        fn.linkage = "internal"
        fn.attributes.add("alwaysinline")
        fn.attributes.add("nounwind")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        b.ret(FORMS[name](_F(module, b), fn.args[0]))
    return fn
