"""What the run was given: its arguments and its note — discovery only, nothing recorded here.

- ``note``: ``--note TEXT`` taken out of argv, ``RUNLOG_NOTE``, and which note wins.
- ``argparse_hook``: the wrapped ``ArgumentParser`` methods that see a parse happen.
- ``given``: which options were given on the command line.
- ``config``: config objects, click/typer and Hydra.
- ``frames``: every look at the caller's stack frames, in one place.
"""
