"""Station layout: widgets and windows, with no behaviour."""
