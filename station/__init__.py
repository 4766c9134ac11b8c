"""The station: the Qt app and the command line. The only package that imports PySide6."""
