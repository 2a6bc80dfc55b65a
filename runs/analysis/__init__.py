"""Judgements over stored results, as plain functions on plain data.

Pages, exports, the API and Celery tasks all call these; none of them needs the database.
"""
