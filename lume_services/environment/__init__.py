"""Package sources, the content-addressed artifact store, archive inspection,
isolated per-artifact environments and the subprocess that loads flows.

Nothing here touches the database or imports Prefect; package code runs only
in a subprocess of its own environment.
"""
