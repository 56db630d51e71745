from __future__ import annotations

import subprocess
import sys


def test_help_does_not_import_copier_or_pydantic() -> None:
    code = (
        "import sys\n"
        "from mlops_scaffold import cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('copier', 'pydantic', 'rich.table', 'yaml', 'pyarrow')\n"
        "         if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert "HEAVY=\n" in result.stdout + "\n"
    assert result.stdout.strip().endswith("HEAVY=")
