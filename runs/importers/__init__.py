"""Import test results Goldpath did not run itself (any CI pipeline's) as a finished run.

``service.import_results`` is the entry point. The file is parsed as a stream (``junit``,
``pytest_json``, into ``cases.ImportedCase``) and stored in batches as it is read
(``store``), all in one transaction: a file refused anywhere, even on its last line, leaves
nothing behind, and a file of a million cases never sits in memory at once. Imported runs
get the same analysis as probe runs.
"""
