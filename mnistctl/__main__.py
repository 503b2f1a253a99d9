"""Entry point for ``python -m mnistctl``."""

from mnistctl.cli import main

if __name__ == "__main__":
    main()
