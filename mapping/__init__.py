"""memxbar.mapping stage (see DESIGN.md)."""
