"""Your own data: read a user's table and infer what a generated project does with it.

``names`` normalises column names, ``read`` reads CSV or Parquet within the machine's
memory, ``infer`` turns a table and its target into the ``schema`` (a serialisable
description a generated project's data contract is rendered from). Import the
submodules: this package imports nothing, so pyarrow loads only when a table is read.
"""
