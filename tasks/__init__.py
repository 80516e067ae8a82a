"""Day-ahead trading pipeline stages. Each stage runs as ``python -m tasks.<stage>``.

Keep this package's ``__init__`` empty of imports: DAG files import ``tasks.config``
at parse time and must not pull in heavy libraries.
"""
