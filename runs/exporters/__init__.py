"""Exports of a run: Markdown (the seed report's shape), printable HTML, JSON, CSV, JUnit XML.

All of them (``formats``) render the same RunReport (runs.reporting.build_report), so every
export says what the run page says. Evidence was redacted when it was recorded; nothing here
adds secrets.
"""
