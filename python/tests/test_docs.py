"""docs/python.md runs: its ```python blocks, in order, in one namespace, as cells of a
notebook, from the repository's root."""

import re

from conftest import ROOT


def blocks():
    text = (ROOT / "docs" / "python.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_guide_has_examples_of_every_function():
    code = "\n".join(blocks())
    for call in ["vmsim.run(", "vmsim.policy(", "vmsim.mrc(", "vmsim.explain(",
                 "vmsim.Trace(", "vmsim.sweep(", "client="]:
        assert call in code, call


def test_the_guide_runs_as_a_notebook(root):
    namespace = {"__name__": "__main__"}
    for i, block in enumerate(blocks(), 1):
        exec(compile(block, f"docs/python.md, block {i}", "exec"), namespace)
