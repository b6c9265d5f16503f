"""Whether a recent window of interactions drifted from a reference window: value scores, sources, topics.

Pure functions on plain data; the caller reads both windows from storage. Each check reports the
Population Stability Index (PSI), sum over bins of (recent - reference) * ln(recent / reference) on the
shares per bin, with the usual reading:

- PSI < 0.1: stable;
- 0.1 <= PSI < 0.2: moderate shift, worth a look;
- PSI >= 0.2: significant shift.

PSI measures how large a shift is but not whether it is more than sampling noise, and a test's p-value
says the opposite: with thousands of samples a shift nobody cares about is "significant". So a window
drifted when both agree (p < alpha and PSI >= threshold), or when PSI alone is at least twice the
threshold, a shift large enough to matter even where the test lacks the samples to confirm it (with 300
value scores a window, equal distributions never reached PSI 0.17 over 200 seeds). The p-value comes from
the two-sample Kolmogorov-Smirnov test for numbers and from the chi-square test of homogeneity for mixes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Numbers = Sequence[float] | FloatArray


@dataclass(frozen=True)
class Drift:
    """One drift check of a recent window against a reference window."""

    name: str
    reference: int
    recent: int
    psi: float
    ks: float | None
    p_value: float | None
    drifted: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class DriftWindows:
    """What the drift checks compare: the reference window's and the recent window's interactions."""

    reference_scores: list[float]
    recent_scores: list[float]
    reference_sources: list[str]
    recent_sources: list[str]
    reference_vectors: FloatArray  # question embeddings, one row each
    recent_vectors: FloatArray

    def judgeable(self, min_samples: int) -> bool:
        """Whether any check has enough on both sides to run its statistics (else all say "too few")."""
        return min(len(self.reference_scores), len(self.recent_scores)) >= min_samples


def judge_drift(windows: DriftWindows, psi_threshold: float, alpha: float, min_samples: int) -> list[Drift]:
    """Value scores, source mix and topic mix of the recent window against the reference one."""
    w, p, a, n = windows, psi_threshold, alpha, min_samples
    return [
        numeric_drift("value_score", w.reference_scores, w.recent_scores, psi_threshold=p, alpha=a, min_samples=n),
        categorical_drift("source_mix", w.reference_sources, w.recent_sources, psi_threshold=p, alpha=a, min_samples=n),
        topic_drift(w.reference_vectors, w.recent_vectors, psi_threshold=p, alpha=a, min_samples=n),
    ]


def psi(reference_shares: Numbers, recent_shares: Numbers, floor: float = 1e-4) -> float:
    """Population Stability Index of two share vectors over the same bins.

    Shares under `floor` are raised to it, so a bin empty in one window adds a large but finite term
    instead of infinity. The index is symmetric in its two arguments and 0 for identical shares.
    """
    ref = np.maximum(np.asarray(reference_shares, dtype=np.float64), floor)
    rec = np.maximum(np.asarray(recent_shares, dtype=np.float64), floor)
    if ref.shape != rec.shape:
        raise ValueError(f"psi needs shares over the same bins, got {ref.shape[0]} and {rec.shape[0]}")
    return float(np.sum((rec - ref) * np.log(rec / ref)))


def numeric_drift(
    name: str,
    reference: Numbers,
    recent: Numbers,
    *,
    psi_threshold: float = 0.2,
    alpha: float = 0.01,
    bins: int = 10,
    min_samples: int = 30,
) -> Drift:
    """Drift of a number such as the value score: PSI over the reference's quantile bins, plus the KS test.

    Bins come from the reference alone (deciles by default), so its shares are even and the PSI reads as
    how far the recent window moved away from that spread; tied quantiles merge into one bin.
    """
    ref = np.asarray(reference, dtype=np.float64)
    rec = np.asarray(recent, dtype=np.float64)
    if too_few := _too_few(name, len(ref), len(rec), min_samples):
        return too_few
    from scipy.stats import ks_2samp  # heavy: the daemon runs this in a child (daemon/isolated.py)

    edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    index = round(psi(_bin_shares(ref, edges), _bin_shares(rec, edges)), 4)
    test = ks_2samp(ref, rec)
    p_value = float(test.pvalue)
    drifted, reason = _judge(index, p_value, "KS", psi_threshold, alpha)
    return Drift(name, len(ref), len(rec), index, round(float(test.statistic), 4), p_value, drifted, reason)


def categorical_drift(
    name: str,
    reference: Sequence[str],
    recent: Sequence[str],
    *,
    psi_threshold: float = 0.2,
    alpha: float = 0.01,
    min_samples: int = 30,
) -> Drift:
    """Drift of a mix such as the sources: PSI over every category seen in either window, plus chi-square.

    A category only the recent window has (a new source) is a bin the reference holds at the PSI floor.
    """
    if too_few := _too_few(name, len(reference), len(recent), min_samples):
        return too_few
    categories = sorted(set(reference) | set(recent))
    position = {category: i for i, category in enumerate(categories)}
    ref_counts = np.bincount([position[c] for c in reference], minlength=len(categories))
    rec_counts = np.bincount([position[c] for c in recent], minlength=len(categories))
    return _mix_drift(name, ref_counts, rec_counts, psi_threshold, alpha)


def topic_drift(
    reference: FloatArray,
    recent: FloatArray,
    *,
    topics: int = 8,
    psi_threshold: float = 0.2,
    alpha: float = 0.01,
    min_samples: int = 30,
    seed: int = 0,
) -> Drift:
    """Drift of what the questions are about, from their embeddings (rows, one question each).

    Topics are k-means clusters (k = min(topics, references // 5), at least 2) fitted on both windows
    together, and the mix of topics per window is then judged as a category mix. Fitting on the reference
    alone and assigning recent questions to its nearest centre was measured and rejected: in 384
    dimensions the reference's own points fit their centres far better than new points do, so clusters
    that split one real topic lose their recent share and equal mixtures were flagged 32% of the time
    (50 seeds, 300 questions a window). Fitted on both, the windows are treated alike, and a new topic
    forms a cluster of its own instead of scattering over whichever old centres happen to be nearest.
    """
    ref = np.asarray(reference, dtype=np.float64)
    rec = np.asarray(recent, dtype=np.float64)
    if ref.ndim != 2 or rec.ndim != 2 or ref.shape[1] != rec.shape[1]:
        raise ValueError(f"topic_drift needs two matrices of equal width, got shapes {ref.shape} and {rec.shape}")
    if too_few := _too_few("topic_mix", len(ref), len(rec), max(min_samples, 2)):
        return too_few
    k = max(2, min(topics, len(ref) // 5))
    labels = _topic_labels(np.vstack([ref, rec]), k, seed)
    ref_counts = np.bincount(labels[: len(ref)], minlength=k)
    rec_counts = np.bincount(labels[len(ref) :], minlength=k)
    present = (ref_counts + rec_counts) > 0  # chi-square cannot take a topic empty in both windows
    return _mix_drift("topic_mix", ref_counts[present], rec_counts[present], psi_threshold, alpha)


def _too_few(name: str, reference: int, recent: int, min_samples: int) -> Drift | None:
    """A not-drifted verdict when either window is too small to judge; PSI is 0 as it was not measured."""
    if reference >= min_samples and recent >= min_samples:
        return None
    reason = f"too few samples (need {min_samples} in each window; reference {reference}, recent {recent})"
    return Drift(name, reference, recent, 0.0, None, None, False, reason)


def _bin_shares(values: FloatArray, edges: FloatArray) -> FloatArray:
    """Each bin's share of `values`; bins are bounded by `edges` and open to both infinities."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / len(values)


def _mix_drift(name: str, ref_counts: IntArray, rec_counts: IntArray, psi_threshold: float, alpha: float) -> Drift:
    """PSI and the chi-square test of homogeneity over counts per category."""
    from scipy.stats import chi2_contingency

    ref_total, rec_total = int(ref_counts.sum()), int(rec_counts.sum())
    index = round(psi(ref_counts / ref_total, rec_counts / rec_total), 4)
    # One category in all: nothing can have moved, and the test has no degrees of freedom.
    p_value = 1.0 if len(ref_counts) < 2 else float(chi2_contingency(np.vstack([ref_counts, rec_counts])).pvalue)
    drifted, reason = _judge(index, p_value, "chi-square", psi_threshold, alpha)
    return Drift(name, ref_total, rec_total, index, None, p_value, drifted, reason)


def _judge(index: float, p_value: float, test: str, psi_threshold: float, alpha: float) -> tuple[bool, str]:
    """The verdict and its one-line reason; see the module docstring for why PSI and p must agree."""
    if index >= 2 * psi_threshold:
        return True, f"PSI {index:.3f} >= {2 * psi_threshold:g} (twice the {psi_threshold:g} threshold)"
    if index >= psi_threshold and p_value < alpha:
        by = index / psi_threshold
        return True, f"PSI {index:.3f} >= {psi_threshold:g} ({by:.1f}x) and {test} p {p_value:.2g} < {alpha:g}"
    return False, "stable"


def _topic_labels(vectors: FloatArray, k: int, seed: int) -> IntArray:
    """The k-means topic of each row.

    One thread: at a few thousand rows it is as fast as many, and the check runs beside the pipeline,
    whose embedding and extraction work should keep the other cores (measured 0.06 s against 1.4 s for
    600 rows on a busy two-core machine).
    """
    from sklearn.cluster import KMeans  # heavy: the daemon runs this in a child (daemon/isolated.py)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        model = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(vectors)
    return np.asarray(model.labels_, dtype=np.int64)
