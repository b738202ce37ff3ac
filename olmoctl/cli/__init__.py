"""Thin Typer commands: parse, call one core function, print."""
