"""Continue chat records as Continue renders them: the person's question from a prompt, the answer from a completion.

Continue's `chatInteraction.prompt` is the whole conversation rendered to one string, and its `completion` is the
model's output as Continue logged it. Continue renders a prompt in one of two ways (continuedev/continue,
`core/llm/index.ts` and `core/llm/templates/chat.ts`):

- providers that take a message list (Ollama, OpenAI-compatible, ...) log every message as `<role>\\n{content}\\n\\n`
  with role system, user, assistant, thinking or tool: the "tags" template;
- providers that take one string render it with a chat template: DeepSeek (`### Instruction:`/`### Response:`, the
  system text pasted into the last instruction), Alpaca, ChatML, Llama 2/Codestral, Llama 3, Zephyr, Gemma, Phind,
  Neural Chat, Anthropic (`Human:`/`Assistant:`), Phi-2, OpenChat, XwinCoder, CodeLlama-70b, LLaVA, Granite.

Files and code attached to the person's message are context, not the question (`fences.py`). Text the person
pasted into the box stays in the query: it cannot be told from what they typed, and it usually is the subject
of the question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.adapters.fences import fence_info, line_numbers, split_attachments

__all__ = ["RenderedPrompt", "clean_completion", "split_prompt"]


@dataclass(frozen=True)
class RenderedPrompt:
    """One rendered Continue prompt split into the person's last question and everything around it.

    `query` is the last message the person wrote, stripped, without template markers, system text or attached
    context; None when the prompt holds no such message. `context` is the rest of the rendered text (system
    text, earlier turns, attached blocks, tool rounds after the question). `earlier_turns` counts the person's
    messages before the query.
    """

    query: str | None
    context: str
    template: str
    ends_with_tool_result: bool
    earlier_turns: int = 0


@dataclass(frozen=True)
class _Template:
    """A single-string chat template: where a user turn opens and closes, and how a prompt in it starts or ends."""

    name: str
    user_open: str
    user_close: str
    starts: tuple[str, ...]
    ends: tuple[str, ...]
    line_start: bool = False


_DEEPSEEK_PREAMBLE = "You are an AI programming assistant, utilizing the DeepSeek"

# Order matters only where two templates share markers: DeepSeek before Alpaca.
_TEMPLATES: tuple[_Template, ...] = (
    _Template("chatml", "<|im_start|>user\n", "<|im_end|>", ("<|im_start|>",), ("<|im_start|>assistant\n",), True),
    _Template(
        "llama3",
        "<|start_header_id|>user<|end_header_id|>\n",
        "<|eot_id|>",
        ("<|begin_of_text|>", "<|start_header_id|>"),
        ("<|start_header_id|>assistant<|end_header_id|>\n",),
    ),
    _Template("zephyr", "<|user|>\n", "</s>", ("<|system|>", "<|user|>"), ("<|assistant|>\n",), True),
    _Template(
        "gemma", "<start_of_turn>user\n", "<end_of_turn>", ("<start_of_turn>",), ("<start_of_turn>model\n",), True
    ),
    _Template("deepseek", "### Instruction:\n", "\n### Response:", (_DEEPSEEK_PREAMBLE,), (), True),
    _Template(
        "alpaca",
        "### Instruction:\n",
        "\n### Response:",
        ("Below is an instruction that describes a task", "### Instruction:\n"),
        ("### Response:\n",),
        True,
    ),
    _Template(
        "phind",
        "### User Message\n",
        "\n### Assistant\n",
        ("### System Prompt\n", "### User Message\n"),
        ("### Assistant\n",),
        True,
    ),
    _Template(
        "neural-chat", "### User:\n", "\n### Assistant:", ("### System:\n", "### User:\n"), ("### Assistant:\n",), True
    ),
    _Template("llama2", "[INST] ", " [/INST]", ("<s>[INST]", "[INST]"), ("[/INST]",)),
    _Template("anthropic", "\n\nHuman: ", "\n\nAssistant:", ("\n\nHuman:",), ("\n\nAssistant:",)),
    _Template("phi2", "\n\nInstruct: ", "\n\nOutput: ", ("\n\nInstruct: ",), ("\n\nOutput: ",)),
    _Template(
        "openchat", "GPT4 Correct User: ", "<|end_of_turn|>", ("GPT4 Correct User: ",), ("GPT4 Correct Assistant: ",)
    ),
    _Template("xwin-coder", "\n<user>: ", "\n<AI>: ", ("<system>: ",), ("\n<AI>: ",)),
    _Template(
        "codellama-70b",
        "Source: user\n\n ",
        " <step> ",
        ("<s>Source: ",),
        ("Source: assistant\nDestination: user\n\n",),
    ),
    _Template(
        "llava",
        "USER: <image>",
        "\nASSISTANT: ",
        ("A chat between a curious user and an artificial intelligence assistant.",),
        ("ASSISTANT: ",),
    ),
    _Template("granite", "Question:\n", "\n\nAnswer:\n", ("\n\nSystem:\n", "Question:\n"), ("Answer:\n",), True),
)

_TAG_ROLES = {
    "<system>": "system",
    "<user>": "user",
    "<assistant>": "assistant",
    "<tool>": "tool",
    "<thinking>": "thinking",
}
_TAGS_START = re.compile(r"<(?:system|user|assistant|tool|thinking)>\n")
# System text rendered in front of the question: by the DeepSeek template (Continue's system message, its
# default wrapped in tags since March 2025) and by Llama 2 (first turn). Other system text cannot be told from
# the person's words there.
_SYSTEM_BLOCKS = (
    ("<important_rules>", "</important_rules>"),
    ("<tool_use_rules>", "</tool_use_rules>"),
    ("<<SYS>>", "<</SYS>>"),
)
# Continue's default system messages from before the tags (February to March 2025).
_SYSTEM_SENTENCES = (
    "Always include the language and file name in the info string when you write code blocks, "
    "for example '```python file.py'.",
    "When using tools, follow the following guidelines:\n- Avoid calling tools unless they are absolutely "
    "necessary. For example, if you are asked a simple programming question you do not need web search. As "
    "another example, if the user asks you to explain something about code, do not create a new file.",
)
_NO_TOOL_OUTPUT = "Error: no tool output for tool calls"
_REASONING_TAGS = ("think", "thinking")
_CHUNK_OPEN = "<assistant>\n"
_CHUNK_JOIN = "\n\n<assistant>\n"


def split_prompt(prompt: str, attachments: bool = True) -> RenderedPrompt:
    """Split a rendered Continue prompt into the person's last question and its context.

    Without `attachments`, files attached to the question stay in it: enough to tell questions apart (an
    interaction's key), and half the work on a prompt full of code.
    """
    if _TAGS_START.match(prompt):
        return _split_tags(prompt, attachments)
    template = _detect(prompt)
    if template is None:
        query = prompt.strip()
        return RenderedPrompt(query or None, "", "plain", False)
    return _split_template(prompt, template, attachments)


def clean_completion(completion: str) -> str:
    """The model's answer from a logged completion: streamed chunk wrappers joined, leading reasoning removed."""
    return _drop_reasoning(_join_chunks(completion)).strip()


def _detect(prompt: str) -> _Template | None:
    for template in _TEMPLATES:
        if template.user_open not in prompt:
            continue
        if template.name == "deepseek":
            if prompt.startswith(_DEEPSEEK_PREAMBLE) or "<|EOT|>" in prompt:
                return template
            continue
        if prompt.startswith(template.starts) or _ends_with(prompt, template.ends):
            return template
    return None


def _ends_with(prompt: str, suffixes: tuple[str, ...]) -> bool:
    # Codestral appends a newline to the Llama 2 rendering, and trailing spaces get trimmed by some writers.
    tail = prompt.rstrip()
    return any(prompt.endswith(s) or tail.endswith(s.rstrip()) for s in suffixes)


def _split_template(prompt: str, template: _Template, attachments: bool) -> RenderedPrompt:
    limit = len(prompt)
    ends_with_tool = False
    latest = True
    while True:
        start = _rfind_turn(prompt, template, limit)
        if start < 0:
            return RenderedPrompt(None, prompt.strip(), template.name, ends_with_tool)
        body = start + len(template.user_open)
        end = prompt.find(template.user_close, body, limit)
        end = limit if end < 0 else end
        message = prompt[body:end]
        if not _is_tool_output(message):
            break
        # Continue's system-message tool framework sends tool results back as user turns.
        ends_with_tool = ends_with_tool or (latest and _nothing_after(prompt, end, template))
        latest = False
        limit = start
    message, system = _strip_system_prefix(message)
    query, attached = split_attachments(message) if attachments else (message.strip() or None, [])
    tail = "" if _nothing_after(prompt, end, template) else prompt[end:]
    context = _join(prompt[:start], system, *attached, tail)
    earlier = _count_turns(prompt, template, start)
    return RenderedPrompt(query, context, template.name, ends_with_tool, earlier)


def _rfind_turn(prompt: str, template: _Template, limit: int) -> int:
    """Start of the last user turn opening before `limit`, or -1."""
    at = prompt.rfind(template.user_open, 0, limit)
    if template.line_start:
        while at > 0 and prompt[at - 1] != "\n":
            at = prompt.rfind(template.user_open, 0, at)
    return at


def _count_turns(prompt: str, template: _Template, limit: int) -> int:
    """How many user turns the person wrote before position `limit` (tool results sent as user turns excluded)."""
    count = 0
    end = limit
    at = _rfind_turn(prompt, template, limit)
    while at >= 0:
        close = prompt.find(template.user_close, at + len(template.user_open), end)
        if not _is_tool_output(prompt[at + len(template.user_open) : end if close < 0 else close]):
            count += 1
        end = at
        at = _rfind_turn(prompt, template, at)
    return count


def _nothing_after(prompt: str, end: int, template: _Template) -> bool:
    """Whether only the turn's closing marker and the assistant's opening marker follow position `end`."""
    rest = prompt[end:].strip()
    rest = rest.removeprefix(template.user_close.strip()).strip()
    return not rest or any(rest == s.strip() for s in template.ends)


def _split_tags(prompt: str, attachments: bool) -> RenderedPrompt:
    lines = prompt.split("\n")
    starts = _tag_lines(lines)
    bounds = [*starts, len(lines)]
    roles = [_TAG_ROLES[lines[b]] for b in starts]
    contents = ["\n".join(lines[b + 1 : bounds[k + 1]]) for k, b in enumerate(starts)]
    tool_like = [
        role == "tool" or (role == "user" and _is_tool_output(text)) for role, text in zip(roles, contents, strict=True)
    ]
    ends_with_tool = bool(tool_like) and tool_like[-1]
    asked = [k for k, role in enumerate(roles) if role == "user" and not tool_like[k]]
    if not asked:
        return RenderedPrompt(None, prompt.strip(), "tags", ends_with_tool)
    k = asked[-1]
    query, attached = split_attachments(contents[k]) if attachments else (contents[k].strip() or None, [])
    before = "\n".join(lines[: starts[k]]) + "\n" if starts[k] else ""
    after = "\n".join(lines[bounds[k + 1] :]) if bounds[k + 1] < len(lines) else ""
    context = _join(before, *attached, after)
    return RenderedPrompt(query, context, "tags", ends_with_tool, len(asked) - 1)


def _tag_lines(lines: list[str]) -> list[int]:
    """Line numbers of the role tags that open messages, passing over tag-like lines inside code fences.

    A fence still open at the end of the prompt is taken to be a fence that never closed (an answer cut off
    mid-block, a pasted fragment): the tags it hid are read as tags after all, and from there on fences are
    not trusted, which also keeps the scan linear. Only tag and fence lines can change anything, so only
    they are visited.
    """
    text = "\n".join(lines)
    marked = sorted({*line_numbers(text, "<", False), *line_numbers(text, "```", True)})
    found: list[int] = []
    skipped: list[int] = []
    depth = 0
    opened = -1
    trust_fences = True
    k = 0
    while k < len(marked):
        i = marked[k]
        line = lines[i]
        if line in _TAG_ROLES and (i == 0 or not lines[i - 1]):
            if depth == 0 or not trust_fences:
                found.append(i)
                skipped.clear()
            else:
                skipped.append(i)
        else:
            info = fence_info(line)
            if info is not None:
                if info or depth == 0:
                    depth += 1
                    opened = i if depth == 1 else opened
                else:
                    depth -= 1
        k += 1
        if k == len(marked) and depth:
            hidden = [j for j in skipped if j > opened]
            if hidden:
                found.append(hidden[0])
                skipped.clear()
                depth = 0
                trust_fences = False
                k = marked.index(hidden[0]) + 1
    return found


def _is_tool_output(message: str) -> bool:
    text = message.lstrip()
    if text.startswith(_NO_TOOL_OUTPUT):
        return True
    if not text.startswith("Tool output for "):
        return False
    first_line = text.split("\n", 1)[0]
    return first_line.endswith(" tool call:")


def _strip_system_prefix(message: str) -> tuple[str, str]:
    """The message without the system text rendered in front of it, and that text."""
    rest = message
    while True:
        text = rest.lstrip()
        cut = _system_prefix_length(text)
        if not cut:
            return rest, message[: len(message) - len(rest)]
        rest = text[cut:]


def _system_prefix_length(text: str) -> int:
    for opening, closing in _SYSTEM_BLOCKS:
        if text.startswith(opening):
            end = text.find(closing)
            return 0 if end < 0 else end + len(closing)
    for sentence in _SYSTEM_SENTENCES:
        if text.startswith(sentence):
            return len(sentence)
    return 0


def _join(*parts: str) -> str:
    return "\n\n".join(p.strip("\n") for p in parts if p.strip())


def _join_chunks(completion: str) -> str:
    """The contents of the chunks when every streamed chunk was logged as `<assistant>\\n{chunk}\\n\\n`, joined."""
    if not completion.startswith(_CHUNK_OPEN):
        return completion
    body = completion[len(_CHUNK_OPEN) :]
    body = body.removesuffix("\n\n")
    return "".join(body.split(_CHUNK_JOIN))


def _drop_reasoning(text: str) -> str:
    """The text without the reasoning blocks a reasoning model writes before its answer.

    Only blocks at the start count: a tag later in the text is more likely an answer talking about tags. A
    block that never closes is all reasoning (the answer was cut off). A closing tag alone on its line with no
    opening before it is reasoning too: some servers put the opening tag in the prompt.
    """
    while True:
        head = text.lstrip()
        for tag in _REASONING_TAGS:
            opening, closing = f"<{tag}>", f"</{tag}>"
            if head.startswith(opening):
                end = head.find(closing, len(opening))
                if end < 0:
                    return ""
                text = head[end + len(closing) :]
                break
        else:
            return _drop_orphan_close(text)


def _drop_orphan_close(text: str) -> str:
    for tag in _REASONING_TAGS:
        closing = f"</{tag}>"
        at = text.find(closing)
        if at < 0 or f"<{tag}>" in text[:at]:
            continue
        line_start = at == 0 or text[at - 1] == "\n"
        after = text[at + len(closing) : at + len(closing) + 1]
        if line_start and after in ("", "\n", "\r"):
            return text[at + len(closing) :]
    return text
