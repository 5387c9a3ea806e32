"""The errors a job turns into its exit status. Library code raises these and never exits itself."""

from __future__ import annotations

WAITING_FOR_HUMANS = 3  # exit status of a job whose human verdicts are missing: re-run it once they are in place


class JobError(Exception):
    """A job cannot go on; `exit_status` is what the job exits with, the message says why and what to do."""

    exit_status = 1


class BadConfig(JobError):
    """Settings that cannot work: one line per problem, each naming the key and the fix."""

    exit_status = 2

    def __init__(self, problems: list[str], job: str | None = None):
        self.problems = list(problems)
        head = f"{job}: bad settings" if job else "bad settings"
        super().__init__(head + ":\n  " + "\n  ".join(self.problems))


class WaitingForHumans(JobError):
    """Human verdicts are not there yet: where the pairs to verify are and where the verdicts go."""

    exit_status = WAITING_FOR_HUMANS

    def __init__(self, what: str, export: str, verdicts: str):
        self.export, self.verdicts = export, verdicts
        super().__init__(
            f"{what} waits for human verdicts: the pairs to verify are in {export} (worksheet.md / worksheet.jsonl, "
            f"Label Studio and Argilla imports). Put the filled worksheet or the tool's export in {verdicts}/ and "
            "run the same command again.")


class CountsDoNotReconcile(JobError):
    """A run's output does not add up (in != kept + dropped + quarantined): its stats.json says where."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("counts do not reconcile: " + "; ".join(self.problems))


class StepFailed(JobError):
    """A step (a child job) failed; its exit status becomes ours, so a step waiting for humans makes the
    parent wait too."""

    def __init__(self, job: str, returncode: int, command: list[str]):
        self.exit_status = returncode
        super().__init__(f"step {job} failed (exit {returncode}); rerun it by hand: {' '.join(command)}")


class OutputHoldsAnotherRun(JobError):
    """The output folder holds a finished run of other settings: a run never overwrites one silently."""

    def __init__(self, output: str, fingerprint: str | None):
        super().__init__(f"{output} holds a finished run with other settings (fingerprint {fingerprint}); "
                         "point the output key at a new location or add overwrite=true")
