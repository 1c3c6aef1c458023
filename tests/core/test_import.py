"""`import loom` is quick and imports neither torch nor jax (ARCHITECTURE.md principle 6)."""

import subprocess
import sys


def test_import_loom_imports_no_framework():
    code = ("import sys, loom; loom.AutoConfig; loom.BertConfig; "
            "import loom.preprocessing, loom.configuration, loom.hub; "
            "print(sorted(m for m in ('torch', 'jax', 'transformers', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve():
    import loom

    for name in loom.__all__:
        assert getattr(loom, name) is not None, name
