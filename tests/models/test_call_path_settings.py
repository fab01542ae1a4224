"""A chat model merges a request's settings into its own once while both stay the same
(SGLangChat.settings_for): the result is always what ``merged`` gives, an ``extra`` changed in
place (nested too) or other settings objects are merged afresh."""

from __future__ import annotations

from agentkit.models.base import ModelSettings
from agentkit.models.sglang_chat import SGLangChat


def _same(a: ModelSettings, b: ModelSettings) -> None:
    assert a.model_dump() == b.model_dump()
    assert a.model_fields_set == b.model_fields_set


def test_the_merge_is_merged_and_kept_while_nothing_changes() -> None:
    model = SGLangChat("http://h:1", settings=ModelSettings(max_tokens=64, extra={"a": {"b": 1}}))
    given = ModelSettings(temperature=0.5, extra={"c": [1]})
    first = model.settings_for(given)
    _same(first, model.settings.merged(given))
    assert model.settings_for(given) is first
    # nothing given: the model's own, as before
    assert model.settings_for(ModelSettings()) is model.settings


def test_an_extra_changed_in_place_is_merged_afresh() -> None:
    model = SGLangChat("http://h:1", settings=ModelSettings(extra={"a": {"b": 1}}))
    given = ModelSettings(temperature=0.5)  # no extra of its own: the model's is kept
    first = model.settings_for(given)
    model.settings.extra["a"]["b"] = 2  # nested, the model's own
    second = model.settings_for(given)
    assert second is not first
    _same(second, model.settings.merged(given))
    assert second.extra == {"a": {"b": 2}}
    given = ModelSettings(temperature=0.5, extra={"c": [1]})  # a request's extra replaces it
    third = model.settings_for(given)
    given.extra["c"].append(2)  # nested, the request's
    fourth = model.settings_for(given)
    assert fourth is not third
    assert fourth.extra == {"c": [1, 2]}
    _same(fourth, model.settings.merged(given))


def test_other_settings_objects_are_merged_afresh() -> None:
    model = SGLangChat("http://h:1", settings=ModelSettings(max_tokens=64))
    given = ModelSettings(temperature=0.5)
    first = model.settings_for(given)
    other = ModelSettings(temperature=0.5)  # equal, another object: merged again (the same)
    assert model.settings_for(other) is not first
    _same(model.settings_for(other), first)
    model.settings = ModelSettings(max_tokens=8)
    assert model.settings_for(other).max_tokens == 8
    assert model.settings_for(ModelSettings(top_p=0.9)).top_p == 0.9
