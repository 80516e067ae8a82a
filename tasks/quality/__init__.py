"""Data quality gates: GX suites, TFDV statistics/drift, gate markers.

``specs`` reads the suite definitions versioned in ``expectations/``;
``prepare`` derives the columns the suites check (pure pandas);
``gx_runner`` runs them in a file-mode GX context with Data Docs;
``tfdv_checks`` computes training statistics and validates serving features;
``gate`` turns outcomes into the gate marker, the report and the error.
Only the standard library is imported at package level.
"""
