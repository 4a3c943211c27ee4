"""One module per service opsdash runs locally; `catalog` lists them in start order."""
