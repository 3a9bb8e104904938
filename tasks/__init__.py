"""Thin Prefect tasks over plain functions of the agent core: retries and timeouts live on the decorators."""
