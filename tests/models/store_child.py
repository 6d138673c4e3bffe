"""A storing process for fault tests: store_deployment, pausing at a step until it is killed.

argv: model_id, source, project, pause step ('' runs to the end). Prints
``STEP <name>`` as each step begins and ``PAUSED <name>`` (then sleeps)
when it reaches the pause step; ``DONE <deployment_id>`` at the end. The
pause happens as a step *begins*: everything before it is done.
"""

from __future__ import annotations

import sys
import time

from lume_services import config
from lume_services.models.registration import Services, store_deployment


def main() -> None:
    model_id, source, project, pause = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    config.configure()

    def progress(step: str, done, total) -> None:
        if done is not None:
            return
        print(f"STEP {step}", flush=True)
        if step == pause:
            print(f"PAUSED {step}", flush=True)
            time.sleep(600)

    record = store_deployment(
        Services.from_context(),
        model_id=model_id,
        source_path=source,
        project_name=project,
        progress=progress,
    )
    if pause == "after":
        print("PAUSED after", flush=True)
        time.sleep(600)
    print(f"DONE {record.deployment_id}", flush=True)


if __name__ == "__main__":
    main()
