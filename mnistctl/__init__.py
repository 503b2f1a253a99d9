"""mnistctl: handwritten-digit recognition on MNIST from the terminal.

Importing this package imports nothing heavy; the version lives here and nowhere else.
"""

__version__ = "0.1.0"
