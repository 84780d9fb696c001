"""A tqdm progress bar fed by :class:`dyntet.progress.Progress` reports (one bar per stage)."""

from __future__ import annotations

from tqdm import tqdm

from dyntet.progress import Progress


class ProgressBar:
    """Use as ``with ProgressBar() as bar: long_operation(progress=bar)``."""

    def __init__(self, disable: bool | None = None) -> None:
        self.disable = disable
        self.stage: str | None = None
        self.bar: tqdm | None = None

    def __call__(self, report: Progress) -> None:
        if report.stage != self.stage:
            self.close()
            self.stage = report.stage
            self.bar = tqdm(total=report.total or None, desc=report.stage, unit="it", dynamic_ncols=True,
                            disable=self.disable)
        assert self.bar is not None
        self.bar.n = report.step
        if report.message:
            self.bar.set_postfix_str(report.message, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
