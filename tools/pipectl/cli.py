"""The `pipectl` command line. Subcommands live in pipectl.commands.* and load lazily, so
`pipectl gate` never imports the web console or the kubernetes client."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from pipectl.context import Context
from pipectl.errors import PipectlError

# name -> "module:attribute". Add one line per command group; keep imports lazy.
COMMANDS: dict[str, str] = {
    "market": "pipectl.commands.market:market",
    "inttest": "pipectl.commands.inttest:inttest",
    "status": "pipectl.commands.status:status",
    "promote": "pipectl.commands.promote:promote",
    "stages": "pipectl.commands.stages:stages",
    "serve": "pipectl.commands.serve:serve",
    "render": "pipectl.commands.render:render",
    "check": "pipectl.commands.check:check",
    "gate": "pipectl.commands.gate:gate",
    "audit": "pipectl.commands.audit:audit",
    "break-glass": "pipectl.commands.breakglass:break_glass",
    "approve": "pipectl.commands.breakglass:approve",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    envvar="PIPECTL_REPO",
    help="This GitOps repository (env PIPECTL_REPO).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PIPECTL_CONFIG",
    help="Pipeline config (default <repo>/pipeline.yaml; env PIPECTL_CONFIG).",
)
@click.option(
    "--audit-log",
    envvar="PIPECTL_AUDIT_LOG",
    help="Audit log path (default from pipeline.yaml; env PIPECTL_AUDIT_LOG).",
)
@click.option("--actor", envvar="PIPECTL_ACTOR", help="Who is acting (env PIPECTL_ACTOR).")
@click.version_option(package_name="pipectl")
@click.pass_context
def cli(
    ctx: click.Context,
    repo: Path,
    config_path: Path | None,
    audit_log: str | None,
    actor: str | None,
) -> None:
    """Policy, promotion and console tooling for the stonks-oracle pipeline."""
    ctx.obj = Context(
        repo=repo.resolve(),
        config_path=config_path,
        audit_log_override=audit_log,
        actor_override=actor,
    )


def main(argv: list[str] | None = None) -> None:
    try:
        # In non-standalone mode click returns ctx.exit()'s code instead of raising.
        rc = cli.main(args=argv, prog_name="pipectl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("pipectl: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PipectlError as exc:
        click.echo(f"pipectl: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
