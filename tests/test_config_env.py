"""Configuration from the environment only (feereg/config.py, feereg/gunicorn_conf.py):
every setting an operator needs has a FEEREG_* variable, .env.example lists exactly those,
values are read as their setting's type with errors naming the variable, and production
refuses to start without what several servers must share."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from feereg import PROJECT_ROOT, config, create_app, gunicorn_conf
from feereg.cli import main

ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


def example_assignments() -> dict[str, str]:
    """Every NAME=value in .env.example, set or shown commented out."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = ASSIGNMENT.match(line)
        if match:
            assert match.group(1) not in found, f"{match.group(1)} is listed twice"
            found[match.group(1)] = match.group(2)
    return found


def all_settings() -> set[str]:
    return set(config.environment_variables()) | set(gunicorn_conf.ENVIRONMENT)


@pytest.fixture
def clean_environ(monkeypatch):
    """No FEEREG_* from the shell that runs the tests."""
    for name in list(os.environ):
        if name.startswith("FEEREG_") or name == "WEB_CONCURRENCY":
            monkeypatch.delenv(name)
    return monkeypatch


def test_env_example_lists_every_setting_and_nothing_else():
    listed = set(example_assignments())
    assert listed - all_settings() == set(), "in .env.example but read by nothing"
    assert all_settings() - listed == set(), "read from the environment but missing from .env.example"


def test_every_default_is_settable_from_the_environment_or_says_why_not():
    settable = set(config._ENV_KEYS.values())
    defaults = {name for name in vars(config.Defaults) if name.isupper()}
    undecided = defaults - settable - set(config.NOT_FROM_ENVIRONMENT)
    assert undecided == set(), ("add each to config._ENV_KEYS (and .env.example) or to "
                                "config.NOT_FROM_ENVIRONMENT with the reason")
    assert set(config.NOT_FROM_ENVIRONMENT) <= defaults, "NOT_FROM_ENVIRONMENT names a setting that is gone"


def test_env_example_is_a_shell_file_and_every_value_in_it_reads(tmp_path):
    """`set -a; . ./.env` works on a copy, with every commented example switched on too."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash to source the file with")
    switched_on = "\n".join(re.sub(r"^#\s*(?=[A-Z][A-Z0-9_]*=)", "", line)
                            for line in ENV_EXAMPLE.read_text().splitlines())
    copy = tmp_path / ".env"
    copy.write_text(switched_on)
    out = subprocess.run([bash, "-c", f"set -a; . {copy}; env -0"], capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"]}, check=True).stdout
    environ = dict(entry.split("=", 1) for entry in out.split("\0") if "=" in entry)
    assert all_settings() <= set(environ), "a line of .env.example did not set its variable in a shell"
    read = config.from_environment(environ)
    assert read["EXCHANGE_RATES"][-1]["rates"]["USD"] == "7.12"
    assert read["API_RATE_LIMIT"] == "300 per minute"
    assert read["VAGUE_DISCLOSURE"] == config.Defaults.VAGUE_DISCLOSURE
    assert read["PEER_OUTLIER_RATIO"] == 3.0 and read["SESSION_COOKIE_SECURE"] is True
    # A commented line shows the default: it must be the default.
    commented = {line.lstrip("# ").split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines()
                 if re.match(r"^#\s*[A-Z][A-Z0-9_]*=", line)}
    for name, key in config._ENV_KEYS.items():
        default = getattr(config.Defaults, key, None)
        if f"FEEREG_{name}" in commented and default is not None:
            assert read[key] == default, name
    for name, default in gunicorn_conf.ENVIRONMENT.items():
        if name in commented:
            assert environ[name] == default, name


def test_values_are_read_as_the_type_of_their_setting():
    read = config.from_environment({
        "FEEREG_NOTICE_DAYS": "14", "FEEREG_PEER_OUTLIER_RATIO": "2", "FEEREG_SESSION_COOKIE_SECURE": "yes",
        "FEEREG_SECRET_KEY": "12345", "FEEREG_FEED_TAG_AUTHORITY": "true", "FEEREG_REDIS_URL": "",
        "FEEREG_VAGUE_DISCLOSURE": '["面议"]', "FEEREG_PROXY_FIX_X_FOR": " 1 ", "UNRELATED": "x",
    })
    assert read == {"NOTICE_DAYS": 14, "PEER_OUTLIER_RATIO": 2.0, "SESSION_COOKIE_SECURE": True,
                    "SECRET_KEY": "12345", "FEED_TAG_AUTHORITY": "true", "VAGUE_DISCLOSURE": ("面议",),
                    "PROXY_FIX_X_FOR": 1}


@pytest.mark.parametrize("name, value, says", [
    ("NOTICE_DAYS", "thirty", "FEEREG_NOTICE_DAYS='thirty': expected a whole number"),
    ("PEER_OUTLIER_MAD_Z", "high", "FEEREG_PEER_OUTLIER_MAD_Z='high': expected a number"),
    ("SESSION_COOKIE_SECURE", "maybe", "FEEREG_SESSION_COOKIE_SECURE='maybe': expected true or false"),
    ("EXCHANGE_RATES", "[{", "FEEREG_EXCHANGE_RATES: not valid JSON"),
    ("VAGUE_DISCLOSURE", '"tbd"', "FEEREG_VAGUE_DISCLOSURE: expected a JSON list or object"),
])
def test_a_bad_value_names_its_variable(name, value, says):
    with pytest.raises(config.ConfigError) as caught:
        config.from_environment({f"FEEREG_{name}": value})
    assert says in str(caught.value)


def test_the_environment_reaches_the_application(clean_environ, tmp_path):
    clean_environ.setenv("FEEREG_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    clean_environ.setenv("FEEREG_SECRET_KEY", "from-the-environment")
    clean_environ.setenv("FEEREG_SEARCH_DIR", str(tmp_path / "search"))
    clean_environ.setenv("FEEREG_NOTICE_DAYS", "21")
    clean_environ.setenv("FEEREG_REDIS_URL", "redis://127.0.0.1:6379/5")
    clean_environ.setenv("FEEREG_REDIS_PREFIX", "staging")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("env.sqlite")
    assert app.config["SECRET_KEY"] == "from-the-environment" and app.config["NOTICE_DAYS"] == 21
    # Rate limits go to the same Redis, under the deployment's prefix, with a short timeout.
    assert app.config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/5"
    assert app.config["RATELIMIT_KEY_PREFIX"] == "staging"
    assert app.config["RATELIMIT_STORAGE_OPTIONS"]["socket_timeout"] == config.Defaults.REDIS_TIMEOUT


PRODUCTION = {"FEEREG_ENV": "production", "FEEREG_SECRET_KEY": "k" * 64,
              "FEEREG_DATABASE_URL": "postgresql://feereg@db.internal:5432/feereg"}


@pytest.mark.parametrize("environ, missing", [
    ({"FEEREG_ENV": "production"}, ["FEEREG_SECRET_KEY is not set", "FEEREG_DATABASE_URL is not set"]),
    ({**PRODUCTION, "FEEREG_SECRET_KEY": ""}, ["FEEREG_SECRET_KEY is not set"]),
    ({**PRODUCTION, "FEEREG_SERVERS": "3"}, ["FEEREG_REDIS_URL is not set but FEEREG_SERVERS=3",
                                             "FEEREG_SEARCH_BACKEND=whoosh but FEEREG_SERVERS=3"]),
    ({**PRODUCTION, "FEEREG_SERVERS": "2", "FEEREG_REDIS_URL": "redis://cache:6379/0",
      "FEEREG_SEARCH_BACKEND": "postgres", "FEEREG_DATABASE_URL": "sqlite:////srv/feereg.sqlite"},
     ["FEEREG_DATABASE_URL is SQLite but FEEREG_SERVERS=2"]),
])
def test_production_refuses_to_start_without_what_servers_share(clean_environ, environ, missing):
    for name, value in environ.items():
        clean_environ.setenv(name, value)
    with pytest.raises(config.ConfigError) as caught:
        create_app()
    message = str(caught.value)
    assert message.startswith("feereg will not start with FEEREG_ENV=production")
    assert [line for line in message.splitlines()[1:]] and all(m in message for m in missing), message
    assert message.count("\n  - ") == len(missing), message  # and nothing else


def test_production_starts_with_what_it_needs(clean_environ):
    for name, value in {**PRODUCTION, "FEEREG_SERVERS": "2", "FEEREG_REDIS_URL": "redis://cache:6379/0",
                        "FEEREG_SEARCH_BACKEND": "postgres"}.items():
        clean_environ.setenv(name, value)
    assert config.check_production(config.Defaults.__dict__ | config.from_environment()) == []
    # An unknown environment name is an error too, not silently "development".
    clean_environ.setenv("FEEREG_ENV", "prod")
    with pytest.raises(config.ConfigError, match="FEEREG_ENV='prod': expected one of development, production"):
        create_app()


def test_cli_says_what_is_missing_without_a_traceback(clean_environ):
    clean_environ.setenv("FEEREG_ENV", "production")
    result = CliRunner().invoke(main, ["serve"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "FEEREG_SECRET_KEY is not set" in result.output and "Traceback" not in result.output
