"""How a finished run reads wherever it is summed up: the badge, the Overview row, the
Business card and the run page header all show ``run_standing``'s answer, so none of them
can call a run a clean pass that another shows as mocked or as never reaching the service.

Two things keep a run from reading as its bare verdict:

- the probes never reached the service (runs.analysis.reach): it reads "could not reach",
  and its revenue is not assessed rather than all at risk;
- its realness is not established: a probe run with mock indicators, or whose realness
  score is under the threshold, is "mocked?" — a PASS then is no clean pass. Imported
  results never touched the network, so realness does not apply to them: they are
  "not assessed", which accuses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from runs.analysis.mock import REAL_THRESHOLD
from runs.analysis.reach import never_reached
from runs.analysis.verdict import PASS

REAL, SUSPECT, NOT_ASSESSED = "real", "suspect", "not assessed"
UNREACHABLE = "unreachable"


def realness_of(imported: bool, score: float | None, mock_count: int) -> str:
    """REAL, SUSPECT or NOT_ASSESSED. Any mock indicator is enough to doubt a probe run;
    a run without a score was never analysed, so nothing is claimed of it."""
    if imported:
        return NOT_ASSESSED
    if mock_count or (score is not None and score < REAL_THRESHOLD):
        return SUSPECT
    return NOT_ASSESSED if score is None else REAL


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Standing:
    verdict: str  # PASS, PARTIAL SUCCESS or FAIL
    base_url: str
    reached: bool  # False: every check failed before any response; revenue not assessed
    realness: str  # REAL, SUSPECT or NOT_ASSESSED
    mock_count: int
    imported: bool

    @property
    def key(self) -> str:
        """What colours the run: unreachable, pass-mocked, or the verdict (pass, fail, …)."""
        if not self.reached:
            return UNREACHABLE
        if self.verdict == PASS and self.realness == SUSPECT:
            return "pass-mocked"
        return self.verdict.lower().replace(" ", "-")

    @property
    def label(self) -> str:
        if not self.reached:
            return "COULD NOT REACH"
        if self.key == "pass-mocked":
            return f"{PASS} · mocked?"
        return self.verdict

    @property
    def unreachable_note(self) -> str:
        if self.reached:
            return ""
        return f"could not reach {self.base_url} — configuration or outage, revenue not assessed"

    @property
    def realness_note(self) -> str:
        """A few words on realness where a summary must say something: an import's is not
        assessed (its tests never touched the network); a probe run's is suspect (said here
        when no mock indicator already says why)."""
        if self.imported:
            return "realness: not assessed (imported results)"
        return "realness: suspect" if self.realness == SUSPECT and not self.mock_count else ""

    @property
    def mock_note(self) -> str:
        """ "8 mock indicators" for a probe run that has some; "" otherwise (an import's
        flags describe its tool's timings, not traffic it never sent)."""
        return "" if self.imported or not self.mock_count else _plural(self.mock_count, "mock indicator")


def run_standing(
    *,
    verdict: str,
    base_url: str,
    imported: bool,
    outcomes: Iterable[tuple[str, str]],
    realness_score: float | None,
    mock_count: int,
) -> Standing:
    """The standing of a finished run from its verdict, where it was sent, each result's
    (outcome, failure class) — or each distinct pair — and its stored realness figures.
    Only Goldpath's probes can fail to reach a service: an import always counts as reached."""
    return Standing(
        verdict=verdict,
        base_url=base_url,
        reached=imported or not never_reached(outcomes),
        realness=realness_of(imported, realness_score, mock_count),
        mock_count=mock_count,
        imported=imported,
    )


# --- the business headline ------------------------------------------------------------------


@dataclass(frozen=True)
class Exposure:
    """One environment's revenue as the business page sums it up."""

    name: str
    mrr_at_risk: int  # over the revenue-carrying suites that reached it
    unreachable: bool  # one of those suites could not reach it


def exposure_order(exposure: Exposure) -> tuple[int, int, str]:
    """Most revenue at risk first, then the environments that could not be reached, then
    the rest; by name among equals."""
    return (-exposure.mrr_at_risk, 0 if exposure.unreachable else 1, exposure.name)


def _environments(count: int) -> str:
    return _plural(count, "environment")


def headline(exposures: list[Exposure]) -> str:
    """'$X monthly revenue at risk across N of M environments', with how many could not be
    reached, or 'No revenue at risk on any environment'."""
    total = sum(e.mrr_at_risk for e in exposures)
    affected = sum(1 for e in exposures if e.mrr_at_risk)
    unreachable = sum(1 for e in exposures if e.unreachable)
    unreached = f"{_environments(unreachable)} could not be reached" if unreachable else ""
    if affected:
        text = f"${total:,} monthly revenue at risk across {affected} of {_environments(len(exposures))}"
        return f"{text}, and {unreached}" if unreached else text
    if not unreachable:
        return "No revenue at risk on any environment"
    if unreachable == len(exposures):
        return f"{unreached}: revenue not assessed"
    reached = len(exposures) - unreachable
    return f"No revenue at risk on the {_environments(reached)} reached; {unreached}"
