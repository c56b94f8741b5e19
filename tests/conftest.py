"""Test-wide settings: hypothesis runs derandomized and without deadlines (shared, noisy CI);
``load_example`` imports a script of ``examples/`` as a module; ``argparse_error`` gives what
an example's parse_args printed when it refused its arguments."""
import importlib.util
from pathlib import Path

import pytest
from hypothesis import settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

settings.register_profile("pyconv1d", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("pyconv1d")


@pytest.fixture(scope="session")
def load_example():
    """``load_example("name.py")``: the example script, imported under its own module name
    (``name_example``) so that its helpers can be tested."""
    def load(filename):
        path = EXAMPLES / filename
        spec = importlib.util.spec_from_file_location(f"{path.stem}_example", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture
def argparse_error(capsys):
    """``argparse_error(parse_args, argv)``: the error parse_args printed for argv, which it
    must refuse (argparse exits)."""
    def refuse(parse_args, argv):
        with pytest.raises(SystemExit):
            parse_args(argv)
        return capsys.readouterr().err
    return refuse
