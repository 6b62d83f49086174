"""One module per ``ino`` subcommand, each exposing ``SUMMARY``, ``build_parser()`` and ``run(args)``.

The modules import their heavy dependencies inside ``run`` so that building the whole CLI stays fast.
"""
