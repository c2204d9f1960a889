"""Code generation: kernel regions -> loop nests -> numba source (render_cpu.py), and the
program builder that turns a fused graph into a runtime Program (program.py)."""
