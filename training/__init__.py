"""memxbar.training stage (see DESIGN.md)."""
