"""What the harness repeats from the Rust side. tests/test_contract.py reads the Rust source
and its golden plan and fails when they drift apart."""

from __future__ import annotations

import re

# installer/src/plan/holdings.rs: a partition is named `<label>~<marker>` (MARKER_SEPARATOR) while
# its install runs; the marker is 8 hex digits (`install_marker`), every label starts `tappaas-`.
MARKER_SEPARATOR = "~"
MARKER_HEX_DIGITS = 8
MARKED_RE = re.compile(rf"^tappaas-.*{re.escape(MARKER_SEPARATOR)}[0-9a-f]{{{MARKER_HEX_DIGITS}}}$")

# The live ISO's volume label (hardware-profiles/fixtures/qemu-lab.machine.toml, `[live] label`).
STICK_LABEL = "TAPPAAS_INSTALLER"


def is_marked(name: str) -> bool:
    """Whether a partition name carries the install marker (`tappaas-...~<8 hex>`)."""
    return MARKED_RE.match(name) is not None
