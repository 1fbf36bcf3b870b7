"""Train one configuration (or a sweep with -m); see README.md. Same as `reglab-train`."""

from reglab.cli import main

if __name__ == "__main__":
    main()
