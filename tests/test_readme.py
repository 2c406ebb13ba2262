"""The README's configuration section and first-run notes match the code."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from commands.cli import _parser
from gateway.settings import _ENV, load_settings
from tests.support.project import ROOT

README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def _serve_options() -> set[str]:
    for action in _parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            serve = action.choices["serve"]
            return {o for a in serve._actions for o in a.option_strings if o.startswith("--")}
    raise AssertionError("no serve command")


def test_every_variable_and_serve_flag_is_in_the_configuration_table() -> None:
    rows = "\n".join(
        line for line in _section("Configuration").splitlines() if line.startswith("|")
    )
    documented_variables = set(re.findall(r"`(PWG_[A-Z_]+)`", rows))
    assert set(_ENV) <= documented_variables
    configuration = _section("Configuration")
    missing = {o for o in _serve_options() - {"--help"} if f"`{o}`" not in configuration}
    assert missing == set()


def test_toml_keys_are_the_variable_names_in_lower_case(tmp_path: Path) -> None:
    for variable, name in _ENV.items():
        assert name == variable.removeprefix("PWG_").lower()
    # The README's examples.
    config = tmp_path / "gateway.toml"
    config.write_text(
        'data_dir = "/srv/pagewright"\naddress = "0.0.0.0:9000"\n'
        'catalog_url = "postgresql://user@host/db"\ntls_cert_file = "cert.pem"\n'
        'tls_key_file = "key.pem"\nlog_level = "warning"\ndomains = ["s3.example.com"]\n'
    )
    settings = load_settings(config_file=config, environ={})
    assert settings.data_dir == Path("/srv/pagewright")
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    assert settings.catalog_url == "postgresql://user@host/db"
    assert settings.tls_cert_file == Path("cert.pem")
    assert settings.log_level == "warning"
    assert settings.domains == ("s3.example.com",)


def test_first_run_notes() -> None:
    quick_start = _section("Quick start")
    assert 'export PATH="$PWD/.venv/bin:$PATH"' in quick_start
    assert "pagewright-gateway --version" in quick_start
    session = _section("Sites and build artifacts")
    note = session[session.index("`api-key create` writes") :]
    assert "same\n`--config` / `--data-dir`" in note
    assert "no catalog at" in note
