"""The command that trains with train/grpo.py in one CPU process, as the README's smoke run starts it.

`accelerate launch --cpu --num_processes 1` plus the settings accelerate otherwise warns it defaulted
(machines, mixed precision, dynamo), run with this interpreter, so the launch is the same wherever it is
built (benchmarks/learning_check.py, the tests). One CPU process needs no launcher: without it, the
command is `python train/grpo.py ARGS` (half the start-up).
"""

import sys
from pathlib import Path

GRPO_SCRIPT = Path(__file__).with_name("grpo.py")

ACCELERATE_CPU = [
    "-m",
    "accelerate.commands.launch",
    "--cpu",
    "--num_processes",
    "1",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
]


def grpo_command(*args, accelerate: bool = True) -> list[str]:
    """`accelerate launch --cpu ... train/grpo.py ARGS` for one CPU process (or `python train/grpo.py ARGS`).

    >>> command = grpo_command("--max_steps", 2)
    >>> command[1:4], Path(command[-3]).name, command[-2:]
    (['-m', 'accelerate.commands.launch', '--cpu'], 'grpo.py', ['--max_steps', '2'])
    >>> len(grpo_command("--max_steps", 2, accelerate=False))
    4
    """
    return [sys.executable, *(ACCELERATE_CPU if accelerate else []), str(GRPO_SCRIPT), *map(str, args)]
