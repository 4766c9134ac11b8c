"""Station logic: everything the windows do, with no layout code."""
