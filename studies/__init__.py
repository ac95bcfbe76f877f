"""memxbar.studies stage (see DESIGN.md)."""
