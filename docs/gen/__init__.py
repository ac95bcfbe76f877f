"""Generators of the documentation site's pages (run by ``make docs-build``; see docs/README)."""
