"""Versioned extraction prompts: one file per version under prompts/, with `# system` and `# user` parts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROMPTS = Path(__file__).parent / "prompts"


@dataclass(frozen=True)
class Prompt:
    """One version of the extraction prompt."""

    version: str
    system: str
    user: str

    def render(self, query: str, response: str, max_chars: int) -> list[dict[str, str]]:
        """Chat messages for one interaction; its text is bounded and cannot close the data delimiters."""
        return [
            {"role": "system", "content": self.system},
            {
                "role": "user",
                "content": self.user.replace("{query}", _bounded(query, max_chars)).replace(
                    "{response}", _bounded(response, max_chars)
                ),
            },
        ]


def _bounded(text: str, max_chars: int) -> str:
    text = text.replace("<<<", "« ").replace(">>>", " »").strip()
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def load_prompt(version: str | None = None) -> Prompt:
    """A prompt version by name (`v1`), or the newest one."""
    files = sorted(PROMPTS.glob("v*.txt"), key=lambda p: int(p.stem[1:]))
    if not files:
        raise FileNotFoundError(f"no prompts in {PROMPTS}")
    path = files[-1] if version is None else PROMPTS / f"{version}.txt"
    parts: dict[str, list[str]] = {}
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# ") and line[2:].strip() in ("system", "user"):
            current = line[2:].strip()
            parts[current] = []
        elif current:
            parts[current].append(line)
    return Prompt(path.stem, "\n".join(parts["system"]).strip(), "\n".join(parts["user"]).strip())
