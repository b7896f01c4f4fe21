"""The tests' helpers: shared session fixtures (``fixtures``, a pytest plugin), run
directories (``runs``), small models (``models``), layer contract checks (``layers``), TF.js in
Node (``tfjs``), LPIPS test weights (``lpips``) and a torch-format file writer (``torch_writer``).
"""

import sys
from pathlib import Path

# The console scripts of the environment under test (the venv running pytest).
BIN = Path(sys.executable).parent
