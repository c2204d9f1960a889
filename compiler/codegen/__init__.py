"""Code generation: a fused graph lowered to a runtime Program (program.py), each kernel's
target-neutral plan (plan.py) rendered by its target (targets.py: render_cpu.py and
render_cuda.py, both in numba's dialect, emit.py), and library steps as data (library.py)."""
