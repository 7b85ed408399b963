"""``python -m jelmore_infra``: the same command line as the ``jelmore-infra`` script."""

from jelmore_infra.cli.main import main

if __name__ == "__main__":
    main()
