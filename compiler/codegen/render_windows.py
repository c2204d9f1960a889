"""The window kernels of the numba renderers: max/avg pooling and their gradients over NHWC
(the image sizes static, the batch symbolic), parallel over images or output pixels through
the backend's ``par_for``; and conv2d's geometry (each backend writes its own product)."""

from __future__ import annotations

from .. import ops as P
from ..ir import Literal
from ..ops.nn import window_geometry


class WindowKernels:
    """Mixed into the renderer: each method returns the source lines that compute the
    window op ``n`` into its product target."""

    def conv_geometry(self, n):
        """The arrays and sizes of a conv2d node (or of its filter gradient, whose second
        input is the output's gradient): (input and filter (gradient) array names, input
        h, w, c, filter kh, kw, out-channels o, pads pt, pl, output oh, ow, strides sh, sw,
        dilations dh, dw)."""
        x, w = n.inputs
        _, h, wd, c = x.type.shape
        kh, kw = n.outputs[0].type.shape[:2] if n.op is P.CONV2D_BACKPROP_FILTER else \
            w.type.shape[:2]
        o = w.type.shape[3]
        ((pt, _, oh), (pl, _, ow)), (sh, sw), (dh, dw) = window_geometry(
            n.op.name, x.type.shape, (kh, kw), n.attr_dict)
        return (self.operand_array(x), self.operand_array(w), h, wd, c, kh, kw, o, pt, pl,
                oh, ow, sh, sw, dh, dw)

    def _pool(self, n) -> list[str]:
        """max/avg pooling over NHWC: channels innermost (contiguous, vectorized); max
        propagates NaN; SAME averages only over the elements inside the image."""
        x = n.inputs[0]
        xa = self.operand_array(x)
        _, h, wd, c = x.type.shape
        kh, kw = n.attr("ksize")
        ((pt, _, oh), (pl, _, ow)), (sh, sw), _ = window_geometry(
            n.op.name, x.type.shape, (kh, kw), n.attr_dict)
        target = self._product_target(n)
        from .emit import literal  # (emit imports this module)
        d = x.type.dtype
        is_max = n.op is P.MAX_POOL
        init = literal(Literal(d.min(), d)) if is_max else literal(Literal(0, d))
        update = (f"{target}[b_, oh_, ow_, c_] = kiln_max({target}[b_, oh_, ow_, c_], "
                  f"{xa}[b_, ih_, iw_, c_])" if is_max else
                  f"{target}[b_, oh_, ow_, c_] += {xa}[b_, ih_, iw_, c_]")
        if is_max:
            self.helpers.add("kiln_max")
        lines = [  # one (image, output row, output column) per parallel iteration
            self.par_for("p_", f"{xa}.shape[0] * {oh * ow}"),
            f"    b_ = p_ // {oh * ow}",
            f"    oh_ = (p_ // {ow}) % {oh}",
            f"    ow_ = p_ % {ow}",
            f"    for c_ in range({c}):",
            f"        {target}[b_, oh_, ow_, c_] = {init}",
            "    count_ = 0",
            f"    for kh_ in range({kh}):",
            f"        ih_ = oh_ * {sh} + kh_ - {pt}",
            f"        for kw_ in range({kw}):",
            f"            iw_ = ow_ * {sw} + kw_ - {pl}",
            f"            if 0 <= ih_ < {h} and 0 <= iw_ < {wd}:",
            "                count_ += 1",
            f"                for c_ in range({c}):",
            f"                    {update}",
        ]
        if not is_max:
            lines += [f"    for c_ in range({c}):",
                      f"        {target}[b_, oh_, ow_, c_] /= count_"]
        return lines

    def _pool_grad(self, n) -> list[str]:
        """The gradient of max/avg pooling, scattered per image (so images run in
        parallel): max gives each window's gradient to its first maximal element (as
        TensorFlow's MaxPoolGrad), avg shares it among the elements inside the image."""
        target = self._product_target(n)
        _, h, wd, c = n.outputs[0].type.shape
        kh, kw = n.attr("ksize")
        ga = self.operand_array(n.inputs[-1])
        ((pt, _, oh), (pl, _, ow)), (sh, sw), _ = window_geometry(
            n.op.name, n.outputs[0].type.shape, (kh, kw), n.attr_dict)

        def window(ind, cond):
            return [f"{ind}for kh_ in range({kh}):",
                    f"{ind}    ih_ = oh_ * {sh} + kh_ - {pt}",
                    f"{ind}    for kw_ in range({kw}):",
                    f"{ind}        iw_ = ow_ * {sw} + kw_ - {pl}",
                    f"{ind}        if 0 <= ih_ < {h} and 0 <= iw_ < {wd}{cond}:"]

        lines = [self.par_for("b_", f"{ga}.shape[0]"),
                 f"    {target}[b_] = 0",
                 f"    for oh_ in range({oh}):",
                 f"        for ow_ in range({ow}):"]
        if n.op is P.MAX_POOL_GRAD:
            xa, ya = self.operand_array(n.inputs[0]), self.operand_array(n.inputs[1])
            hit = f" and not found_ and {xa}[b_, ih_, iw_, c_] == {ya}[b_, oh_, ow_, c_]"
            return lines + [f"            for c_ in range({c}):",
                            "                found_ = False",
                            *window(" " * 16, hit),
                            "                            found_ = True",
                            f"                            {target}[b_, ih_, iw_, c_] += "
                            f"{ga}[b_, oh_, ow_, c_]"]
        return lines + ["            count_ = 0",
                        *window(" " * 12, ""),
                        "                        count_ += 1",
                        *window(" " * 12, ""),
                        f"                        for c_ in range({c}):",
                        f"                            {target}[b_, ih_, iw_, c_] += "
                        f"{ga}[b_, oh_, ow_, c_] / count_"]
