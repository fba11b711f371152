"""The commands' registry: a command is one module, and the first word picks it.  (The
commands at work are in integration/test_cli.py and beside what each command does.)"""
from __future__ import annotations

import pytest


def test_the_first_word_picks_the_command():
    from tasktop.cli import registry

    commands = registry.commands()
    assert {"watch", "dump", "check", "diff", "ls", "run", "demo", "exporter", "rules", "dashboard"} <= set(commands)
    assert registry.choose(["dump", "12", "--json"]) == (commands["dump"], ["12", "--json"])
    assert registry.choose([]) == (commands["watch"], [])
    assert registry.choose(["12"]) == (commands["watch"], ["12"])
    # The default command has no word of its own: `tasktop watch` is a bad pid, as ever.
    assert registry.choose(["watch"]) == (commands["watch"], ["watch"])
    for name, command in commands.items():
        parser = registry.parser_for(command)
        assert parser.prog == ("tasktop" if name == "watch" else f"tasktop {name}")
        assert parser.description == command.description
    assert registry.bug_status(commands["check"]) == 3  # check's 1 means "a threshold was passed"
    assert {registry.bug_status(c) for n, c in commands.items() if n != "check"} == {1}


def test_a_command_is_one_module(tmp_path, monkeypatch):
    from tasktop.cli import registry

    package = tmp_path / "more_commands"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_helpers.py").write_text("X = 1\n")  # not a command: its name starts with _
    (package / "hello.py").write_text(
        "name = 'hello'\ndescription = 'Say hello.'\n"
        "def add_arguments(parser):\n    parser.add_argument('--loud', action='store_true')\n"
        "def run(args):\n    return 5 if args.loud else 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import more_commands

    found = registry.discover(more_commands)
    assert list(found) == ["hello"]
    hello = found["hello"]
    assert hello.run(registry.parser_for(hello).parse_args(["--loud"])) == 5
    assert registry.parser_for(hello).format_help().startswith("usage: tasktop hello [-h] [--loud]")

    (package / "broken.py").write_text("name = 'broken'\n")
    with pytest.raises(TypeError, match="more_commands.broken is not a tasktop command"):
        registry.discover(more_commands)
    (package / "broken.py").unlink()
    (package / "hello_again.py").write_text((package / "hello.py").read_text())
    with pytest.raises(ValueError, match="two commands named 'hello'"):
        registry.discover(more_commands)
