"""One module per evaluation task."""
