"""The ``jelmore-infra`` command line: thin click commands over the library.

Each command lives in its own module and is imported only when it runs, so ``--help`` stays fast
and never imports nats or jsonschema.
"""
