"""A budget source for the KVM backends' tests, whose instruction count the test scripts."""


class ScriptedSource:
    """An exact budget source: each KVM_RUN (`exited`) 'executes' `step` instructions, and a test's
    script may add to `count` itself; `armed` lists the budgets asked for, `rearms` counts re-arms."""

    name = "scripted"
    exact = True
    description = "scripted test source"

    def __init__(self, step: int = 0) -> None:
        self.step = step
        self.count = 0
        self.armed: list[int] = []
        self.rearms = 0

    def arm(self, instructions: int) -> None:
        self.armed.append(instructions)
        self.count = 0

    def entered(self) -> None:
        pass

    def exited(self) -> None:
        self.count += self.step

    def executed(self) -> int:
        return self.count

    def rearm(self) -> None:
        self.rearms += 1

    def disarm(self) -> None:
        pass

    def close(self) -> None:
        pass
