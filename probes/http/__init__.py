"""HTTP probe kinds: request sequences with expectations, and the auth check."""
