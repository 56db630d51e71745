"""The pipeline stages, each run as ``python -m <package>.pipeline.<stage>`` (``dvc.yaml``).

``prepare`` (with ``data`` and ``data_check``, the contract every stage reads through),
``features``, ``train``, ``evaluate``, ``monitor``, and the stages the stack adds
(``validate``, ``tune``).
"""
