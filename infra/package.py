"""Package the prod stage for AWS in both formats, offline apart from the package registry.

python -m infra.package [--out build] [--no-lint]

- <out>/cloudformation/: `chalice package --pkg-format cloudformation` (SAM, JSON) with
  infra/templates/sam-merge.json merged in, then checked with cfn-lint;
- <out>/terraform/: `chalice package --pkg-format terraform` plus infra/templates/terraform/
  (the tables, event sources and policies, and an override file for chalice's resources).

chalice needs a region (AWS_DEFAULT_REGION, us-east-1 unless set) but no credentials; it
downloads the Lambda (manylinux) wheels of requirements.txt from the package registry.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from infra import deploy_templates

ROOT = deploy_templates.ROOT
BIN = Path(sys.executable).parent
CLOUDFORMATION = "cloudformation"
TERRAFORM = "terraform"
SAM_TEMPLATE = "sam.json"
TERRAFORM_TEMPLATE = "chalice.tf.json"


class PackagingError(RuntimeError):
    pass


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return env


def _run(command: list[str]) -> None:
    completed = subprocess.run(command, cwd=ROOT, env=_environment(), capture_output=True, text=True)
    if completed.returncode != 0:
        output = completed.stdout + completed.stderr
        raise PackagingError(f"{' '.join(command)} failed ({completed.returncode}):\n{output}")


def chalice_package(out: Path, pkg_format: str, *extra: str) -> None:
    if out.exists():
        shutil.rmtree(out)
    stage = deploy_templates.STAGE
    _run([str(BIN / "chalice"), "package", "--stage", stage, "--pkg-format", pkg_format, *extra, str(out)])


def lint(template: Path) -> str:
    """cfn-lint's findings; raises on errors (warnings and notes are returned)."""
    completed = subprocess.run(
        [str(BIN / "cfn-lint"), "--format", "parseable", str(template)], capture_output=True, text=True
    )
    findings = completed.stdout.strip()
    # Exit code: bit 2 = errors, 4 = warnings, 8 = informational.
    if completed.returncode & 2 or completed.returncode == 1:
        raise PackagingError(f"cfn-lint found errors in {template}:\n{findings}{completed.stderr}")
    return findings


def package(out: Path, run_lint: bool = True) -> tuple[Path, Path]:
    """Build both formats under `out`; returns (SAM template, Terraform directory)."""
    stale = [p for p, text in deploy_templates.rendered().items() if not p.exists() or p.read_text() != text]
    if stale:
        raise PackagingError(f"infra/templates is out of date ({stale[0].name}); run python -m infra.deploy_templates")
    cfn_dir, tf_dir = out / CLOUDFORMATION, out / TERRAFORM
    merge = deploy_templates.SAM_MERGE.relative_to(ROOT)
    chalice_package(cfn_dir, "cloudformation", "--template-format", "json", "--merge-template", str(merge))
    chalice_package(tf_dir, "terraform")
    for extra in (deploy_templates.TF_MAIN, deploy_templates.TF_OVERRIDE):
        shutil.copy(extra, tf_dir / extra.name)
    if run_lint:
        lint(cfn_dir / SAM_TEMPLATE)
    return cfn_dir / SAM_TEMPLATE, tf_dir


def _shown(path: Path) -> Path:
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def main() -> None:
    parser = argparse.ArgumentParser(description="Package the prod stage for CloudFormation/SAM and Terraform.")
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="output directory (default build/)")
    parser.add_argument("--no-lint", action="store_true", help="skip cfn-lint")
    args = parser.parse_args()
    try:
        template, tf_dir = package(args.out.resolve(), run_lint=not args.no_lint)
    except PackagingError as error:
        sys.exit(str(error))
    print(f"CloudFormation/SAM: {_shown(template)}")
    print(f"Terraform:          {_shown(tf_dir)}")


if __name__ == "__main__":
    main()
