"""The ``pinpoint-agent`` command line.

Setup errors (bad JSON, unknown integration, unusable root…) print one line and exit 1; integration
failures are reported inside the result JSON with exit 0, as the original agent did.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import orjson
import typer

# Typer 0.29 ships its own copy of click; its usage errors are these classes, not the click package's.
from typer._click import exceptions as click_errors

from pinpoint_agent import __version__
from pinpoint_agent.errors import PinpointError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="pinpoint-agent: moves engineering data from source systems to a backend.")

RootOpt = typer.Option(None, "--pinpoint-root", help="agent root folder [default: ~/.pinpoint/next]")
AgentJson = typer.Option(None, "--agent-config-json", help="agent config as JSON")
AgentFile = typer.Option(None, "--agent-config-file", help="agent config JSON file")
IntJson = typer.Option(None, "--integrations-json", help='integrations: [{"id","name","type","config"}]')
IntFile = typer.Option(None, "--integrations-file", help="integrations JSON file")
OutFile = typer.Option(None, "--output-file", help="where the result JSON goes [default: stdout]")
IntDir = typer.Option(None, "--integrations-dir",
                      help="external integration executables [default: <root>/integrations]")
LogFormat = typer.Option("text", "--log-format", help="text|json")
LogLevel = typer.Option("info", "--log-level", help="debug|info|warning|error")


def fail(message: str) -> NoReturn:
    """One clear line on stderr and exit 1."""
    from pinpoint_agent.log import mask

    first = mask(str(message)).strip().splitlines()[0] if str(message).strip() else "failed"
    print(f"error: {first}", file=sys.stderr)
    raise SystemExit(1)


def write_result(result: dict[str, Any], output_file: Path | None) -> None:
    """The result JSON to ``--output-file`` (atomically: a complete file or the old one) or stdout."""
    data = orjson.dumps(result, option=orjson.OPT_INDENT_2)
    if output_file is None:
        sys.stdout.write(data.decode() + "\n")
        return
    tmp = output_file.with_name(output_file.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, output_file)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(f"cannot write --output-file {output_file}: {exc.strerror or exc}")


@app.command()
def version() -> None:
    """Prints the agent's version."""
    print(__version__)


@app.command(hidden=True)
def export(
    agent_config_json: str | None = AgentJson,
    agent_config_file: Path | None = AgentFile,
    integrations_json: str | None = IntJson,
    integrations_file: Path | None = IntFile,
    output_file: Path | None = OutFile,
    reprocess_historical: bool = typer.Option(False, "--reprocess-historical", help="ignore stored tokens"),
    pinpoint_root: Path | None = RootOpt,
    integrations_dir: Path | None = IntDir,
    log_format: str = LogFormat,
    log_level: str = LogLevel,
) -> None:
    """Exports all data of the given integrations, incrementally."""
    from pinpoint_agent.commands import run_export

    args = _args(agent_config_json, agent_config_file, integrations_json, integrations_file, pinpoint_root,
                 integrations_dir, log_format, log_level, output_file)
    write_result(run_export(args, reprocess_historical=reprocess_historical), output_file)


@app.command("force-historical")
def force_historical(integration: str = typer.Argument(..., help="name@TYPE, e.g. github@SOURCECODE, or a name"),
                     pinpoint_root: Path | None = RootOpt) -> None:
    """Drops an integration's stored tokens so its next export is historical."""
    from pinpoint_agent.commands import forget_integration

    n = forget_integration(integration, pinpoint_root)
    print(f"dropped {n} stored tokens and checkpoints of {integration}")


def _args(agent_config_json: str | None, agent_config_file: Path | None, integrations_json: str | None,
          integrations_file: Path | None, pinpoint_root: Path | None, integrations_dir: Path | None,
          log_format: str, log_level: str, output_file: Path | None) -> Any:
    from pinpoint_agent.commands import CommandArgs

    return CommandArgs(agent_config_json, agent_config_file, integrations_json, integrations_file,
                       pinpoint_root, integrations_dir, log_format, log_level, output_file)


@app.command("validate-config", hidden=True)
def validate_config(
    agent_config_json: str | None = AgentJson,
    agent_config_file: Path | None = AgentFile,
    integrations_json: str | None = IntJson,
    integrations_file: Path | None = IntFile,
    output_file: Path | None = OutFile,
    pinpoint_root: Path | None = RootOpt,
    integrations_dir: Path | None = IntDir,
    log_format: str = LogFormat,
    log_level: str = LogLevel,
) -> None:
    """Tests one integration's connection (and a test clone where it names a repo)."""
    from pinpoint_agent.commands import run_validate_config

    args = _args(agent_config_json, agent_config_file, integrations_json, integrations_file, pinpoint_root,
                 integrations_dir, log_format, log_level, output_file)
    write_result(run_validate_config(args), output_file)


@app.command("export-onboard-data", hidden=True)
def export_onboard_data(
    object_type: str = typer.Option(..., "--object-type", help="users|repos|projects|workconfig|calendars"),
    agent_config_json: str | None = AgentJson,
    agent_config_file: Path | None = AgentFile,
    integrations_json: str | None = IntJson,
    integrations_file: Path | None = IntFile,
    output_file: Path | None = OutFile,
    pinpoint_root: Path | None = RootOpt,
    integrations_dir: Path | None = IntDir,
    log_format: str = LogFormat,
    log_level: str = LogLevel,
) -> None:
    """Writes one integration's users, repos, projects, work config or calendars."""
    from pinpoint_agent.commands import run_export_onboard_data

    args = _args(agent_config_json, agent_config_file, integrations_json, integrations_file, pinpoint_root,
                 integrations_dir, log_format, log_level, output_file)
    write_result(run_export_onboard_data(args, object_type), output_file)


@app.command(hidden=True)
def mutate(
    mutation: str = typer.Option(..., "--mutation", help='{"fn": "PR_SET_TITLE", "data": {…}}'),
    agent_config_json: str | None = AgentJson,
    agent_config_file: Path | None = AgentFile,
    integrations_json: str | None = IntJson,
    integrations_file: Path | None = IntFile,
    output_file: Path | None = OutFile,
    pinpoint_root: Path | None = RootOpt,
    integrations_dir: Path | None = IntDir,
    log_format: str = LogFormat,
    log_level: str = LogLevel,
) -> None:
    """Writes one change back to the source system (e.g. a pull request's title)."""
    from pinpoint_agent.commands import run_mutate

    args = _args(agent_config_json, agent_config_file, integrations_json, integrations_file, pinpoint_root,
                 integrations_dir, log_format, log_level, output_file)
    write_result(run_mutate(args, mutation), output_file)


@app.command(hidden=True)
def webhook(
    data: str = typer.Option(..., "--data", help='{"headers": {…}, "body": {…}}'),
    agent_config_json: str | None = AgentJson,
    agent_config_file: Path | None = AgentFile,
    integrations_json: str | None = IntJson,
    integrations_file: Path | None = IntFile,
    output_file: Path | None = OutFile,
    pinpoint_root: Path | None = RootOpt,
    integrations_dir: Path | None = IntDir,
    log_format: str = LogFormat,
    log_level: str = LogLevel,
) -> None:
    """Turns one webhook delivery into model objects."""
    from pinpoint_agent.commands import run_webhook

    args = _args(agent_config_json, agent_config_file, integrations_json, integrations_file, pinpoint_root,
                 integrations_dir, log_format, log_level, output_file)
    write_result(run_webhook(args, data), output_file)


@app.command()
def enroll(
    code: str = typer.Argument(..., help="one-time enroll code from the backend"),
    backend_url: str = typer.Option(..., "--backend-url", envvar="PINPOINT_BACKEND_URL",
                                    help="base url of the backend API, e.g. https://api.example.com"),
    pinpoint_root: Path | None = RootOpt,
) -> None:
    """Registers this agent with the backend and writes <root>/config.json (0600); refuses to overwrite it."""
    from pinpoint_agent.commands import run_enroll

    print(run_enroll(code, backend_url, pinpoint_root))


def _interrupted(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is somewhere in the exception's chain (libraries wrap it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt) or "KeyboardInterrupt" in str(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


@app.command()
def run(pinpoint_root: Path | None = RootOpt, log_format: str = LogFormat, log_level: str = LogLevel) -> None:
    """Runs the service: serves the commands as Prefect deployments until stopped (SIGTERM)."""
    from pinpoint_agent.commands import run_service

    raise SystemExit(run_service(pinpoint_root, log_format=log_format, log_level=log_level))


def main(argv: list[str] | None = None) -> NoReturn:
    """The command line: runs one command in this process and exits with its code."""
    _main(sys.argv[1:] if argv is None else list(argv))
    raise SystemExit(0)


def _main(argv: list[str] | None) -> None:
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Abort:
        fail("aborted")
    except click_errors.NoArgsIsHelpError:
        raise SystemExit(0) from None  # the help was printed
    except click_errors.ClickException as exc:
        fail(exc.format_message())
    except PinpointError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted")
    except Exception as exc:  # a bug: the traceback goes to the command's log file, the user gets one line
        if _interrupted(exc):
            fail("interrupted")
        import traceback

        from pinpoint_agent.log import write_to_file

        write_to_file("unexpected error\n" + traceback.format_exc())
        fail(f"unexpected error: {type(exc).__name__}: {exc} (the traceback is in the command's log)")
    if code == 130:  # Typer's answer to Ctrl-C outside standalone mode
        fail("interrupted")
    if isinstance(code, int) and code:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
