"""One module per ``ino`` subcommand, each with ``SUMMARY``, ``DESCRIPTION``, ``add_arguments(parser)`` and
``run(args)``. Heavy imports happen inside ``run``, so that building the whole command line stays fast."""
