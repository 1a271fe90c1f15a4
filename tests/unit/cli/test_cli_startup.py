"""pkctl apply's start-up: every `pkctl apply` pays for what it imports
(bench/pod_startup.py times apply -> Ready including the process start), so
modules that apply does not use stay out of its import graph. (`apply -o
yaml` still prints: tests/integration/test_cli.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

# Imported only by other verbs or by `apply -o yaml|json`.
NOT_ON_APPLY_PATH = ("cli.printers", "pkapi.selectors", "google.protobuf.json_format")


def test_apply_does_not_import_what_it_does_not_use() -> None:
    code = (
        "import json, sys\n"
        "from cli import main\n"
        "main.cli.get_command(None, 'apply')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    loaded = set(json.loads(out.stdout))
    assert "cli.apply" in loaded
    assert not loaded & set(NOT_ON_APPLY_PATH)



def test_every_command_entry_loads_and_a_missing_one_fails_loudly() -> None:
    """Each COMMANDS entry names a click command that exists (pkctl --help
    lists exactly them); an entry whose module is missing raises, naming the
    entry, instead of the verb silently vanishing."""
    import click
    import pytest

    from cli import main

    names = [spec.partition("=")[0] for spec in main.COMMANDS]
    assert main.cli.list_commands(click.Context(main.cli)) == sorted(names)
    for spec in main.COMMANDS:
        name, _, where = spec.partition("=")
        assert isinstance(main.load(name, where), click.Command), spec
    with pytest.raises(ImportError, match='pkctl command "scael": no module cli.scael'):
        main.load("scael", "cli.scael:command")
    with pytest.raises(ImportError, match='pkctl command "scale": cli.scale:nothing is not a click command'):
        main.load("scale", "cli.scale:nothing")
