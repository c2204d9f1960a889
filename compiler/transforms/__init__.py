"""Graph-to-graph transforms: reverse-mode autodiff (vjp)."""
