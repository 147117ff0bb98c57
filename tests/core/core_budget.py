"""Training budgets for dvi_core's tests: small, since they check behaviour, not final quality."""

FAST = {"n_iter": 60, "layout_epochs": 60}
