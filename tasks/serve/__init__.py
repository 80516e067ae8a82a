"""The read-only schedule API for the desk: ``python -m tasks.serve``.

FastAPI on uvicorn over the same data root as the pipeline (``DAP_DATA_ROOT``):
published schedules, bids and manifests per delivery day, a zone's forecast,
the list of days, and a what-if endpoint that re-optimises the rest of a day
with the schedule's own LP (``tasks.optimise``). It never writes to the data
root. Endpoints, auth and examples: docs/desk-api.md.

Modules: ``store`` (reading versions and files, cached), ``whatif`` (the
re-optimisation, pure), ``http`` (content negotiation, ETags, errors),
``app`` (routes, auth, metrics), ``__main__`` (the command).
"""
