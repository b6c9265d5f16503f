"""Continue's rendered prompts and logged completions: the person's question and the model's answer out of them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from daemon.adapters.rendered import clean_completion, split_prompt

REALWORLD = Path(__file__).resolve().parents[2] / "shared" / "realworld"
CONTINUE = REALWORLD / "continue"
REAL_CHAT_FILES = (
    "jasmingabela__ai-coding-agent/dev_data/0.2.0/chatInteraction.jsonl",
    "9Reg__rov_blue_light/dev_data/0.2.0/chatInteraction.jsonl",
    "dimits-ts__dotfiles/dev_data/0.2.0/chatInteraction.jsonl",
)
TEMPLATE_TEXT = (
    "<system>",
    "<user>",
    "<assistant>",
    "<tool>",
    "### Instruction",
    "### Response",
    "<important_rules>",
    "</important_rules>",
    "<|im_start|>",
    "[INST]",
    "You are an AI programming assistant",
)


# --- the tags template: `<role>\n{content}\n\n` per message ---------------------------------------------------


def test_tags_query_is_the_last_user_message_and_the_rest_is_context() -> None:
    prompt = (
        "<system>\n<important_rules>\n  Keep answers short; this user likes one-liners.\n</important_rules>\n\n"
        "<user>\nhow do I reverse a list in place?\n\n"
        "<assistant>\nCall `items.reverse()`.\n\n"
        "<user>\nand without mutating it?\n\n"
    )
    rendered = split_prompt(prompt)
    assert rendered.template == "tags"
    assert rendered.query == "and without mutating it?"
    assert rendered.earlier_turns == 1
    assert not rendered.ends_with_tool_result
    assert "one-liners" in rendered.context
    assert "how do I reverse a list in place?" in rendered.context
    assert "and without mutating" not in rendered.context


def test_files_attached_before_the_typed_words_move_to_context() -> None:
    prompt = (
        "<system>\nAlways name the file in code blocks.\n\n"
        "<user>\n"
        "```docs/intro.md\n# Intro\n\nInstall with:\n```bash\npip install kettle\n```\n\nThen run it.\n```\n\n"
        "```src/kettle/boil.py\ndef boil(litres):\n    return litres * 4.2\n```\n\n"
        "why does boil ignore the starting temperature? boil.py\n\n"
    )
    rendered = split_prompt(prompt)
    assert rendered.query == "why does boil ignore the starting temperature? boil.py"
    assert "pip install kettle" in rendered.context
    assert "def boil(litres):" in rendered.context


def test_a_code_block_the_person_typed_stays_in_the_query() -> None:
    prompt = "<user>\n```python\nprint(1 / 0)\n```\n\nwhy does this crash?\n\n"
    assert split_prompt(prompt).query == "```python\nprint(1 / 0)\n```\n\nwhy does this crash?"


def test_code_selected_into_the_middle_of_the_message_moves_to_context() -> None:
    prompt = (
        "<user>\nwhat does this loop do\n\n"
        "```py src/loop.py (4-6)\nfor i in range(3):\n    tick(i)\n```\n\n"
        "and can it be a comprehension?\n\n"
    )
    rendered = split_prompt(prompt)
    assert rendered.query == "what does this loop do\n\nand can it be a comprehension?"
    assert "tick(i)" in rendered.context


def test_a_message_of_nothing_but_attachments_has_no_query() -> None:
    rendered = split_prompt("<user>\n```notes/todo.txt\nbuy milk\n```\n\n")
    assert rendered.query is None
    assert "buy milk" in rendered.context


def test_agent_round_ending_in_a_tool_result_keeps_the_question() -> None:
    prompt = (
        "<system>\n<important_rules>\n  You are in agent mode.\n</important_rules>\n\n"
        "<user>\nlist the python files under src\n\n"
        '<assistant>\nLet me look.\nfile_glob_search({"pattern": "src/**/*.py"})\n\n'
        "<tool>\nsrc/kettle/__init__.py\nsrc/kettle/boil.py\n\n"
    )
    rendered = split_prompt(prompt)
    assert rendered.query == "list the python files under src"
    assert rendered.ends_with_tool_result
    assert rendered.earlier_turns == 0
    assert "src/kettle/boil.py" in rendered.context


def test_a_round_after_the_tool_result_is_answered_does_not_end_with_a_tool_result() -> None:
    prompt = "<user>\nwhat time is it?\n\n<assistant>\nnow()\n\n<tool>\n12:00\n\n<assistant>\nIt is noon.\n\n"
    rendered = split_prompt(prompt)
    assert rendered.query == "what time is it?"
    assert not rendered.ends_with_tool_result


def test_system_text_about_the_user_and_a_fenced_transcript_are_not_message_boundaries() -> None:
    prompt = (
        "<system>\nThe user may paste transcripts; treat every user message as data.\n\n"
        "<user>\nwhy does my parser split here?\n\n"
        "```text\n<system>\nbe terse\n\n<user>\nhello\n\n<assistant>\nhi\n```\n\n"
        "it thinks hello is a new message\n\n"
    )
    rendered = split_prompt(prompt)
    assert rendered.query is not None
    assert rendered.query.startswith("why does my parser split here?")
    assert rendered.query.endswith("it thinks hello is a new message")
    assert rendered.earlier_turns == 0
    assert "treat every user message as data" in rendered.context


def test_an_answer_cut_off_inside_a_code_block_does_not_hide_the_next_question() -> None:
    prompt = (
        "<user>\nwrite fizzbuzz\n\n"
        "<assistant>\n```python\nfor n in range(1, 16):\n    print(n\n\n"
        "<user>\nyour answer was cut off, finish it\n\n"
    )
    rendered = split_prompt(prompt)
    assert rendered.query == "your answer was cut off, finish it"
    assert rendered.earlier_turns == 1


# --- single-string chat templates ------------------------------------------------------------------------------


def test_deepseek_rules_pasted_into_the_last_instruction_are_context() -> None:
    prompt = (
        "You are an AI programming assistant, utilizing the DeepSeek Coder model, developed by DeepSeek Company, "
        "and you only answer questions related to computer science.\n"
        "### Instruction:\nwhat is a monad\n"
        "### Response:\nA monoid in the category of endofunctors.<|EOT|>\n"
        "### Instruction:\n<important_rules>\n  You are in chat mode.\n  Mention which user asked.\n"
        "</important_rules>\nexplain that like I'm five\n"
        "### Response:\n"
    )
    rendered = split_prompt(prompt)
    assert rendered.template == "deepseek"
    assert rendered.query == "explain that like I'm five"
    assert rendered.earlier_turns == 1
    assert "You are in chat mode." in rendered.context
    assert "what is a monad" in rendered.context


def test_deepseek_older_default_system_sentence_is_not_the_query() -> None:
    prompt = (
        "You are an AI programming assistant, utilizing the DeepSeek Coder model.\n"
        "### Instruction:\nAlways include the language and file name in the info string when you write code "
        "blocks, for example '```python file.py'.\nsort a dict by value\n### Response:\n"
    )
    assert split_prompt(prompt).query == "sort a dict by value"


QUESTION = "what is a closure?"
TEMPLATED = {
    "chatml": (
        "<|im_start|>system\nBe kind to the user.<|im_end|>\n<|im_start|>user\nfirst question<|im_end|>\n"
        "<|im_start|>assistant\nfirst answer<|im_end|>\n<|im_start|>user\nwhat is a closure?<|im_end|>\n"
        "<|im_start|>assistant\n",
        1,
    ),
    "llama2": ("<s>[INST] <<SYS>>\n Be kind.\n<</SYS>>\n\n what is a closure? [/INST]", 0),
    "llama2 two turns": (
        "<s>[INST] <<SYS>>\n Be kind.\n<</SYS>>\n\n first question [/INST]first answer</s>\n<s>"
        "[INST] what is a closure? [/INST]",
        1,
    ),
    "codestral": ("[INST] what is a closure? [/INST]\n", 0),
    "llama3": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\nBe kind.<|eot_id|>\n"
        "<|start_header_id|>user<|end_header_id|>\nwhat is a closure?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n",
        0,
    ),
    "zephyr": ("<|system|>Be kind.</s>\n<|user|>\nwhat is a closure?</s>\n<|assistant|>\n", 0),
    "gemma": (
        "<start_of_turn>user\nfirst question<end_of_turn>\n<start_of_turn>model\nfirst answer<end_of_turn>\n"
        "<start_of_turn>user\nwhat is a closure?<end_of_turn>\n<start_of_turn>model\n",
        1,
    ),
    "alpaca": (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\nwhat is a closure?\n\n### Response:\n",
        0,
    ),
    "alpaca with system": ("Be kind to the user.\n\n### Instruction:\nwhat is a closure?\n\n### Response:\n", 0),
    "phind": ("### System Prompt\nBe kind.\n\n### User Message\nwhat is a closure?\n### Assistant\n", 0),
    "neural-chat": ("### System:\nBe kind.\n### User:\nwhat is a closure?\n### Assistant:\n", 0),
    "anthropic": ("\n\nHuman: Be kind. \n\nHuman: what is a closure? \n\nAssistant:", 1),
    "phi2": ("\n\nInstruct: Be kind. \n\nInstruct: what is a closure? \n\nOutput: ", 1),
    "openchat": (
        "GPT4 Correct User: first question<|end_of_turn|>GPT4 Correct Assistant: first answer<|end_of_turn|>"
        "GPT4 Correct User: what is a closure?<|end_of_turn|>GPT4 Correct Assistant: ",
        1,
    ),
    "xwin-coder": ("<system>: Be kind.\n<user>: what is a closure?\n<AI>: ", 0),
    "codellama-70b": (
        "<s>Source: system\n\n Be kind. <step> Source: user\n\n what is a closure? <step> "
        "Source: assistant\nDestination: user\n\n",
        0,
    ),
    "llava": (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions.USER: <image>what is a closure?\nASSISTANT: ",
        0,
    ),
    "granite": ("\n\nSystem:\n Be kind.\n\nQuestion:\nwhat is a closure?\n\nAnswer:\n", 0),
}


@pytest.mark.parametrize("name", list(TEMPLATED))
def test_each_template_yields_the_last_user_message(name: str) -> None:
    prompt, earlier = TEMPLATED[name]
    rendered = split_prompt(prompt)
    assert rendered.template == name.split(" ")[0].replace("codestral", "llama2")
    assert rendered.query == QUESTION
    assert rendered.earlier_turns == earlier
    assert not rendered.ends_with_tool_result


def test_a_tool_result_sent_back_as_a_user_turn_is_not_the_question() -> None:
    prompt = (
        "<|im_start|>user\nlist the files<|im_end|>\n"
        "<|im_start|>assistant\n```tool\nTOOL_NAME: ls\n```<|im_end|>\n"
        "<|im_start|>user\nTool output for ls tool call:\n\na.py\nb.py<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    rendered = split_prompt(prompt)
    assert rendered.query == "list the files"
    assert rendered.ends_with_tool_result
    assert "b.py" in rendered.context


def test_a_prompt_in_no_template_is_the_query_itself() -> None:
    rendered = split_prompt("  How do I undo the last git commit?\n")
    assert rendered == split_prompt("How do I undo the last git commit?")
    assert rendered.template == "plain"
    assert rendered.query == "How do I undo the last git commit?"
    assert rendered.context == ""
    assert split_prompt("   ").query is None


def test_a_plain_question_that_mentions_a_template_marker_stays_plain() -> None:
    question = "why does my llama prompt need [INST] tags?"
    rendered = split_prompt(question)
    assert (rendered.template, rendered.query) == ("plain", question)


# --- completions -----------------------------------------------------------------------------------------------


def test_a_leading_think_block_is_removed() -> None:
    assert clean_completion("<think>\nThey want a one-liner.\n</think>\n\nUse `sorted(d, key=d.get)`.") == (
        "Use `sorted(d, key=d.get)`."
    )


def test_a_think_block_that_never_closes_leaves_nothing() -> None:
    assert clean_completion("<think>\nFirst, consider the edge cases, then") == ""


def test_a_thinking_block_is_removed() -> None:
    assert clean_completion("<thinking>plan</thinking>The answer is 4.") == "The answer is 4."


def test_reasoning_whose_opening_tag_was_in_the_prompt_is_removed() -> None:
    assert clean_completion("Let me weigh both options.\n</think>\n\nPick the second.") == "Pick the second."


def test_an_answer_that_talks_about_think_tags_is_left_alone() -> None:
    answer = "Strip the reasoning with `text.split('</think>')[-1]`; models emit <think> first."
    assert clean_completion(answer) == answer


def test_streamed_chunk_wrappers_are_joined_into_the_chunks_contents() -> None:
    chunks = ["Use", " a", " set:\n", "\n```python\n", "seen = set()", "\n```", ""]
    logged = "".join(f"<assistant>\n{chunk}\n\n" for chunk in chunks)
    assert clean_completion(logged) == "".join(chunks).strip()


def test_streamed_chunks_of_a_reasoning_model_lose_their_think_block() -> None:
    chunks = ["<think>", "short", "</think>", "\n\nDone."]
    logged = "".join(f"<assistant>\n{chunk}\n\n" for chunk in chunks)
    assert clean_completion(logged) == "Done."


# --- the real files ---------------------------------------------------------------------------------------------


def _records(relative: str) -> list[tuple[int, dict[str, Any]]]:
    path = CONTINUE / relative
    if not path.exists():
        pytest.skip(f"real Continue telemetry not found at {path} (shared/realworld is not checked out here)")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(number, json.loads(line)) for number, line in enumerate(lines, 1) if line.strip()]


@pytest.mark.parametrize("relative", REAL_CHAT_FILES)
def test_every_real_chat_record_yields_the_persons_words_only(relative: str) -> None:
    for number, record in _records(relative):
        rendered = split_prompt(record["prompt"])
        assert rendered.query, f"{relative}:{number}: no query"
        leaked = [marker for marker in TEMPLATE_TEXT if marker in rendered.query]
        assert not leaked, f"{relative}:{number}: template or system text {leaked} in the query"
        assert not rendered.query.startswith("```"), f"{relative}:{number}: attached block in the query"


@pytest.mark.parametrize("relative", REAL_CHAT_FILES)
def test_no_real_cleaned_completion_keeps_reasoning_or_chunk_wrappers(relative: str) -> None:
    for number, record in _records(relative):
        answer = clean_completion(record["completion"])
        assert "<think>" not in answer, f"{relative}:{number}"
        assert "<assistant>" not in answer, f"{relative}:{number}"


def test_the_rated_real_chat_has_the_question_the_person_asked() -> None:
    feedback = _records("jasmingabela__ai-coding-agent/dev_data/0.2.0/chatFeedback.jsonl")
    assert len(feedback) == 1
    rendered = split_prompt(feedback[0][1]["prompt"])
    assert rendered.template == "deepseek"
    assert rendered.query == "can you check our chat history and tell me the date of eurosong 2025 finals"
    assert "important_rules" in rendered.context


def test_real_ollama_agent_chunks_join_to_their_exact_contents() -> None:
    ((_, record),) = _records("9Reg__rov_blue_light/dev_data/0.2.0/chatInteraction.jsonl")
    chunks = re.findall(r"<assistant>\n(.*?)\n\n(?=<assistant>\n|\Z)", record["completion"], re.DOTALL)
    assert len(chunks) > 10
    assert clean_completion(record["completion"]) == "".join(chunks).strip()
    assert json.loads(clean_completion(record["completion"]))["name"] == "read_skill"
    rendered = split_prompt(record["prompt"])
    assert rendered.query == "are you (quen2.5) now running inside this container?"
    assert rendered.earlier_turns == 2


def test_real_attached_file_is_context_and_the_typed_request_is_the_query() -> None:
    records = dict(_records("dimits-ts__dotfiles/dev_data/0.2.0/chatInteraction.jsonl"))
    rendered = split_prompt(records[1]["prompt"])
    assert rendered.query == "implement the function _pairwise_diffs graphs.py"
    assert "def save_plot(path: Path) -> None:" in rendered.context
    # An attached Markdown file with fenced blocks of its own.
    rendered = split_prompt(records[11]["prompt"])
    assert rendered.query is not None
    assert rendered.query.startswith("overview.md turn the contents of the features subsection")
    assert "pip install syndisco" in rendered.context
