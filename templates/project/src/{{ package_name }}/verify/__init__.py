"""``python -m <package>.verify``: prove the whole stack works on this machine.

:mod:`.runner` runs the plan (:mod:`.plan`, rendered from the project's answers) of the
core steps (:mod:`.core`) and those the stack's components contribute.
"""
