"""The checker agrees with the reference verdicts on every history of the shared reference set.

The histories live outside the repository, beside it: ``<repo root>/../shared/histories`` (or the
folder named by ``SYNCOBJ_HISTORIES``). Their absence is a failure, not a skip: without them this
suite would check nothing while claiming to pass.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from syncobj.lincheck import Verdict, check, get_model, load_history
from syncobj.lincheck.files import FORMATS

REPO_ROOT = Path(__file__).resolve().parent.parent


def histories_root() -> Path:
    env = os.environ.get("SYNCOBJ_HISTORIES")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "histories"


def reference_cases() -> list[tuple[str, str, bool]]:
    root = histories_root()
    cases = []
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if (p / "expected.tsv").is_file()):
            with open(folder / "expected.tsv", newline="") as f:
                for row in list(csv.reader(f, delimiter="\t"))[1:]:
                    cases.append((folder.name, row[0], row[1].strip() == "true"))
    return cases


CASES = reference_cases()


def test_the_reference_histories_are_present() -> None:
    root = histories_root()
    assert root.is_dir(), (
        f"reference histories not found at {root}: put the shared/ folder beside the repository "
        f"or point SYNCOBJ_HISTORIES at its histories/ folder"
    )
    assert len(CASES) == 108, f"expected 108 reference verdicts under {root}, found {len(CASES)}"
    assert sum(1 for _, _, ok in CASES if ok) == 26, "expected 23 + 3 linearizable histories"


@pytest.mark.parametrize(("folder", "name", "linearizable"), CASES, ids=[f"{f}/{n}" for f, n, _ in CASES])
def test_reference_verdict(folder: str, name: str, linearizable: bool) -> None:
    loaded = load_history(histories_root() / folder / name)
    assert loaded.model == FORMATS[loaded.format]
    result = check(get_model(loaded.model), loaded.history, timeout=60)
    assert result.verdict is (Verdict.OK if linearizable else Verdict.ILLEGAL), result.describe()
    if not linearizable:
        failure = result.failure
        assert failure is not None
        # the explanation is about the history: the failing response is in the illegal prefix,
        # and the order found for what came before really is legal in the model
        assert failure.operation in failure.prefix
        model = get_model(loaded.model)
        state = model.init()
        for op in failure.linearization:
            ok, state = model.step(state, op.input, op.output)
            assert ok, f"the reported linearization is not legal at {op}"
