"""memxbar.crossbar stage (see DESIGN.md)."""
