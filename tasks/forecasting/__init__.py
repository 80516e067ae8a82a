"""Day-ahead price forecasting models: numpy in, numpy out.

``metrics`` (epftoolbox-compatible accuracy measures), ``naive`` (weekly
naive benchmark), ``design`` (epftoolbox day matrices and lag features),
``lear`` (per-slot LASSO, the LEAR benchmark), ``dnn`` (Keras probabilistic
day-ahead network) and ``ensemble`` (combining members). Heavy libraries
(TensorFlow, scikit-learn) are imported inside functions so the package can
be imported cheaply by DAG-facing code.
"""
