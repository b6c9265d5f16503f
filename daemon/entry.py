"""The `skilld` executable: an editor hook goes straight to `daemon/hook.py`, everything else to the command
line. A hook runs on every prompt; the command line's imports (click, the settings model) would cost it
a few hundred milliseconds each time."""

from __future__ import annotations

import sys
from typing import NoReturn


def main() -> NoReturn:
    """Run a hook, or the command line."""
    from daemon.hook import hook_call

    call = hook_call(sys.argv[1:])
    if call is not None:
        from daemon.hook import run

        sys.exit(run(*call))
    from daemon.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
