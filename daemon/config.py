"""One typed configuration model, read from a TOML file and SKILLD_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from daemon.locations import default_config_file, default_home


class ConfigError(Exception):
    """A configuration value a user can fix; its message is one line naming the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class GenericStream(Section):
    """Maps the fields of a JSONL stream skilld has no adapter for onto an interaction."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    match: str = Field(description="file-name glob, for example 'mytool-*.jsonl'")
    query: str = "query"
    response: str = "response"
    outcome: str | None = None
    feedback: str | None = None
    timestamp: str = "timestamp"
    session: str | None = None
    type: str | None = None


class TelemetryConfig(Section):
    paths: list[Path] = Field(default_factory=list)
    poll: bool = False
    poll_interval: float = Field(default=1.0, gt=0, le=60)
    batch_lines: int = Field(default=4000, ge=1, le=100_000)
    batch_seconds: float = Field(default=0.25, gt=0, le=10)
    max_line_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    close_inactive: float = Field(default=300.0, gt=0)
    ingest_workers: int = Field(default=0, ge=0, le=64)
    generic: list[GenericStream] = Field(default_factory=list)

    @field_validator("paths", mode="after")
    @classmethod
    def _expand(cls, paths: list[Path]) -> list[Path]:
        return [p.expanduser() for p in paths]


class PrivacyConfig(Section):
    user_fields: list[str] = Field(
        default_factory=lambda: ["userId", "user_id", "user", "username", "uniqueId", "user_email"]
    )
    dead_letter_bytes: int = Field(default=4096, ge=256, le=65536)


class Weights(Section):
    outcome: float = Field(default=0.40, ge=0, le=1)
    feedback: float = Field(default=0.20, ge=0, le=1)
    reusability: float = Field(default=0.20, ge=0, le=1)
    complexity: float = Field(default=0.10, ge=0, le=1)
    novelty: float = Field(default=0.10, ge=0, le=1)


class ScoringConfig(Section):
    threshold: float = Field(default=0.7, ge=0, le=1)
    weights: Weights = Field(default_factory=Weights)
    similar_query: float = Field(default=0.85, gt=0, le=1)
    similar_skill: float = Field(default=0.90, gt=0, le=1)
    neutral_outcome: float = Field(default=0.5, ge=0, le=1)
    batch: int = Field(default=256, ge=1, le=10_000)


class QdrantConfig(Section):
    url: str | None = None
    api_key: str | None = None


class EmbeddingConfig(Section):
    model_path: Path | None = None
    batch_size: int = Field(default=64, ge=1, le=4096)
    # onnx: ONNX Runtime, no torch in the daemon (exported once, cached); torch: sentence-transformers.
    runtime: Literal["onnx", "torch"] = "onnx"
    threads: int = Field(default=0, ge=0, le=256)  # ONNX Runtime's threads; 0: one per core
    cache_dir: Path | None = None  # where the ONNX export is kept; default $XDG_CACHE_HOME/skilld/embeddings
    # Freed after this long with no text to embed (no prompt, search or scoring); loaded again in ~0.4 s (0: never).
    idle_unload_seconds: float = Field(default=1800.0, ge=0)


class LlmConfig(Section):
    model_path: Path | None = None
    endpoint: str | None = None
    model: str = "local"
    api_key: str | None = None
    timeout: float = Field(default=120.0, gt=0)
    context: int = Field(default=2048, ge=256)
    threads: int = Field(default=0, ge=0)
    max_tokens: int = Field(default=400, ge=32)
    max_input_chars: int = Field(default=1500, ge=100)
    repeat_penalty: float = Field(default=1.2, ge=1.0, le=3.0)
    # The in-process model is freed after this long without work and loaded again for the next item (0: never).
    idle_unload_seconds: float = Field(default=300.0, ge=0)


class ExtractionConfig(Section):
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_seconds: float = Field(default=30.0, ge=0)
    max_backlog: int = Field(default=10_000, ge=1)


_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class ArmConfig(Section):
    """One arm of an extraction experiment: a prompt version (a file under extractors/prompts/)."""

    name: str = Field(pattern=_NAME)
    prompt: str = Field(pattern=r"^v\d+$", description="a prompt version, e.g. v2 (extractors/prompts/v2.txt)")
    share: float = Field(default=1.0, gt=0, description="traffic share under the fixed policy (normalised)")

    @field_validator("prompt")
    @classmethod
    def _prompt_exists(cls, version: str) -> str:
        from extractors.prompts import PROMPTS

        if not (PROMPTS / f"{version}.txt").is_file():
            known = ", ".join(sorted(p.stem for p in PROMPTS.glob("v*.txt")))
            raise ValueError(f"no prompt {version} (known: {known})")
        return version


class ExperimentConfig(Section):
    """An A/B test of extraction: its arms, how traffic is shared, and when one arm is promoted.

    The first arm is the control. An arm is promoted when its gate pass rate is significantly higher than the
    control's at `alpha` (two-proportion z-test), with at least `min_samples` trials per arm, and it is not
    worse on the guards: mean grounding by more than `grounding_tolerance`, mean extraction latency by more
    than `latency_tolerance` seconds.
    """

    name: str = Field(pattern=_NAME)
    arms: list[ArmConfig] = Field(min_length=2)
    policy: Literal["fixed", "thompson"] = "fixed"
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    min_samples: int = Field(default=50, ge=5)
    grounding_tolerance: float = Field(default=0.05, ge=0, le=1)
    latency_tolerance: float = Field(default=5.0, ge=0)

    @field_validator("arms")
    @classmethod
    def _distinct(cls, arms: list[ArmConfig]) -> list[ArmConfig]:
        names = [a.name for a in arms]
        if len(set(names)) != len(names):
            raise ValueError("arm names must differ")
        return arms


class InsightsConfig(Section):
    """Whether skilld is learning well: drift of recent interactions against a reference window, failure
    clusters and knowledge gaps (`daemon/insights.py`)."""

    window_days: float = Field(default=7, gt=0, description="the recent window")
    reference_days: float = Field(default=28, gt=0, description="the reference window, just before the recent one")
    psi_threshold: float = Field(default=0.2, gt=0, description="PSI at which a distribution has shifted")
    alpha: float = Field(default=0.01, gt=0, lt=0.5, description="significance level of the KS and chi-square tests")
    min_samples: int = Field(default=30, ge=5, description="fewer interactions in a window: no drift verdict")
    check_minutes: float = Field(default=60, gt=0, description="how often the daemon checks for drift")
    low_value: float = Field(default=0.3, ge=0, le=1, description="a value score below this counts as a failure")
    covered_at: float = Field(default=0.5, gt=0, le=1, description="cosine at which a skill answers a topic")
    min_asked: int = Field(default=3, ge=2, description="how often a topic is asked before it can be a gap")


class SkillsConfig(Section):
    merge_threshold: float = Field(default=0.95, gt=0, le=1)
    # The quality gate: the least share of a skill's words its exchange must support (extractors/gate.py).
    min_grounding: float = Field(default=0.7, ge=0, le=1)
    # When the model answers "no reusable skill": final (the interaction is no_skill), advisory (the grounded
    # draft may still pass the gate), auto (final for an endpoint, advisory for the bundled in-process model).
    model_no_skill: Literal["auto", "final", "advisory"] = "auto"
    # Usefulness (storage/usefulness.py): the Beta prior's pseudo-counts of helped and not helped, how much it
    # weighs in ranking (0: relevance alone; 0.5: a skill that always helped ranks up to 25% higher), and the
    # bound under which a skill whose credible interval lies wholly below it stops being served (retired).
    usefulness_prior: tuple[float, float] = (1.0, 1.0)
    usefulness_weight: float = Field(default=0.5, ge=0, le=1)
    retire_below: float = Field(default=0.4, ge=0, le=1)
    # What `skilld context` and the editor hooks put before a prompt: at most this many skills, each at least
    # this relevant (cosine similarity of the prompt and the skill), in at most this many characters.
    context_limit: int = Field(default=3, ge=1, le=20)
    context_min_relevance: float = Field(default=0.35, ge=0, le=1)
    context_max_chars: int = Field(default=2500, ge=200, le=50_000)
    # A folder the daemon keeps as Agent Skills (one SKILL.md folder per served skill), for example one that
    # ~/.claude/skills links to; only folders it wrote are touched.
    publish_dir: Path | None = None

    @property
    def prior_mean(self) -> float:
        """Usefulness of a skill with no evidence yet: the prior's mean."""
        return self.usefulness_prior[0] / sum(self.usefulness_prior)

    @field_validator("usefulness_prior")
    @classmethod
    def _positive_prior(cls, prior: tuple[float, float]) -> tuple[float, float]:
        if min(prior) <= 0:
            raise ValueError("both pseudo-counts (helped, not helped) must be above 0")
        return prior

    @field_validator("publish_dir", mode="after")
    @classmethod
    def _absolute_publish_dir(cls, path: Path | None) -> Path | None:
        return path.expanduser().absolute() if path is not None else None


class DatasetConfig(Section):
    dedup_threshold: float = Field(default=0.95, gt=0, le=1)
    validation_fraction: float = Field(default=0.1, ge=0, lt=1)
    # Context (attached files, earlier turns) a training example keeps, where the answer draws on it.
    max_context_chars: int = Field(default=2000, ge=0)


def _crontab(value: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value)
    except ValueError as exc:
        raise ValueError(f"not a crontab expression (minute hour day month weekday): {exc}") from None
    return value


class FinetuneConfig(Section):
    min_examples: int = Field(default=1000, ge=1)
    trigger_every: int = Field(default=500, ge=1)
    schedule: str = "0 2 * * sun"
    learning_rate: float = Field(default=2e-4, ge=0)
    epochs: int = Field(default=1, ge=1, le=100)
    max_steps: int = Field(default=0, ge=0)
    batch_size: int = Field(default=4, ge=1, le=256)
    lora_r: int = Field(default=8, ge=1, le=256)
    lora_alpha: int = Field(default=16, ge=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    max_length: int = Field(default=512, ge=32)
    promote_margin: float = Field(default=0.01, ge=0, lt=1)
    eval_examples: int = Field(default=4, ge=0, le=1000)
    nice: int = Field(default=10, ge=0, le=19)

    _cron = field_validator("schedule")(_crontab)


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class ApiConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8421, ge=0, le=65535, description="0: any free port (shown in `skilld status`)")
    # /metrics carries counts only and is open by default (Prometheus scrapes it); false: it needs the token too.
    metrics_public: bool = True


class RetentionConfig(Section):
    events_days: int = Field(default=90, ge=1)
    schedule: str = "17 3 * * *"
    manage_telemetry: bool = False
    compress_after_days: int = Field(default=7, ge=1)

    _cron = field_validator("schedule")(_crontab)


class Settings(BaseSettings):
    """Every knob of skilld, with defaults that work out of the box."""

    model_config = SettingsConfigDict(
        env_prefix="SKILLD_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(default_factory=default_home)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    qdrant: QdrantConfig = Field(default_factory=QdrantConfig)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    extraction: ExtractionConfig = Field(default_factory=ExtractionConfig)
    skills: SkillsConfig = Field(default_factory=SkillsConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    experiments: list[ExperimentConfig] = Field(default_factory=list)
    insights: InsightsConfig = Field(default_factory=InsightsConfig)

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, home: Path) -> Path:
        return home.expanduser().absolute()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)

    @property
    def telemetry_paths(self) -> list[Path]:
        """The directories to watch: configured ones, or `<home>/telemetry` when none are."""
        return self.telemetry.paths or [self.home / "telemetry"]


# What a reload (SIGHUP) applies at once: sections and keys read where they are used. The rest are read
# when a part is built (the stores, the models, the API's sockets) and take effect at the next start.
LIVE_SECTIONS = frozenset({"scoring", "extraction", "finetune", "logging", "retention", "experiments", "insights"})
LIVE_KEYS = frozenset(
    {
        "telemetry.paths",
        "telemetry.poll",
        "telemetry.poll_interval",
        "telemetry.batch_lines",
        "telemetry.batch_seconds",
        "telemetry.ingest_workers",
        "dataset.validation_fraction",
    }
)


def apply_settings(current: Settings, new: Settings) -> list[str]:
    """Copy what can change while running from `new` into `current`; return the changed keys that cannot."""
    later: list[str] = []
    for name in Settings.model_fields:
        old_value, new_value = getattr(current, name), getattr(new, name)
        if old_value == new_value:
            continue
        if name in LIVE_SECTIONS:
            setattr(current, name, new_value)
        elif isinstance(old_value, Section):
            for key in type(old_value).model_fields:
                if getattr(old_value, key) == getattr(new_value, key):
                    continue
                if f"{name}.{key}" in LIVE_KEYS:
                    setattr(old_value, key, getattr(new_value, key))
                else:
                    later.append(f"{name}.{key}")
        else:
            later.append(name)
    return later


def _describe(error: ErrorDetails) -> str:
    key = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
    return f"config: {key}: {message}{shown}"


def load_settings(config_file: Path | None = None, home: Path | None = None) -> Settings:
    """Load settings: explicit arguments, then SKILLD_* variables, then the TOML file, then defaults."""
    explicit = config_file or (Path(os.environ["SKILLD_CONFIG"]) if os.environ.get("SKILLD_CONFIG") else None)
    path = explicit or default_config_file()
    if explicit is not None and not path.is_file():
        raise ConfigError(f"config: file {path} does not exist")
    bound = type(
        "Settings",
        (Settings,),
        {"model_config": {**Settings.model_config, "toml_file": path if path.is_file() else None}},
    )
    overrides: dict[str, Any] = {"home": home} if home is not None else {}
    try:
        settings: Settings = bound(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0])) from None
    except ValueError as exc:  # malformed TOML, or malformed JSON in an environment variable
        raise ConfigError(f"config: {path}: {str(exc).splitlines()[0]}") from None
    return settings
