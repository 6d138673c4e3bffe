"""Regenerate the README's configuration table from the settings classes.

python scripts/render_config_table.py          # rewrite README.md in place
python scripts/render_config_table.py --check  # exit 1 if README.md is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lume_services.config import LUMEServicesSettings, iter_settings  # noqa: E402

README = ROOT / "README.md"
START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def _default(value: object) -> str:
    if value is None:
        return "(unset)"
    if value == "":
        return "(empty)"
    text = getattr(value, "value", value)
    return f"`{text}`"


def table() -> str:
    rows = ["| variable | type | default | description |", "|---|---|---|---|"]
    for var, type_name, default, description in iter_settings(LUMEServicesSettings):
        rows.append(f"| `{var}` | {type_name} | {_default(default)} | {description} |")
    return "\n".join(rows)


def rendered(readme: str) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main() -> int:
    current = README.read_text(encoding="utf-8")
    new = rendered(current)
    if "--check" in sys.argv[1:]:
        if new != current:
            print("README.md configuration table is stale: run python scripts/render_config_table.py")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
