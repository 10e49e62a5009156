"""Facts about a run beyond its code and arguments: environment, machine, scheduler,
resources and data (issue 15).

Each module is small and, where it can be, a pure function of what it is
given. None of them is imported by ``import runlog``; ``lifecycle`` gathers the
facts on the code-state thread (machine, the installed set) and at the finish
(imported packages, resources, data), never on the script's thread in
``start()`` — except ``scheduler``, a few environment variables.
"""
