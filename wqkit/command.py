"""The result of a shell command run on a target (the lab guest or the host)."""

from __future__ import annotations

from dataclasses import dataclass

from wqkit.errors import WqkitError


@dataclass
class CommandResult:
    """What a command did: exit status, output and wall time."""

    command: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @classmethod
    def from_agent(cls, command: str, answer: dict) -> CommandResult:
        """Build from the dictionary that ``wqkit.lab.agent.run`` returns."""
        return cls(command, answer["returncode"], answer["stdout"], answer["stderr"], answer["seconds"])

    def check(self, where: str = "the lab") -> CommandResult:
        """Raise a one-line WqkitError unless the command succeeded."""
        if self.returncode != 0:
            detail = (self.stderr.strip() or self.stdout.strip() or "no output").splitlines()[-1]
            raise WqkitError(f"`{self.command}` failed in {where} (exit {self.returncode}): {detail}")
        return self
