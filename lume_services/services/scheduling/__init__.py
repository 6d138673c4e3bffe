"""Scheduling on Prefect 3: the only part of lume-services that imports prefect."""
