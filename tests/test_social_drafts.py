"""Drafts from the owner's notes (social_media_integration.drafts): fitted to each platform, for any text."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from core.errors import ValidationError
from social_media_integration.drafts import X_LIMIT, draft_posts, draft_thread, fit_for_x, x_length

IMAGE = "https://cdn.example.com/spring.jpg"


def test_a_note_becomes_a_draft_per_platform_with_the_image_for_instagram():
    note = f"Please post about our spring sale!\n\n20% off everything this week: https://acme.example/sale\n\nimage: {IMAGE}\n"
    drafts = draft_posts(note)
    text = "20% off everything this week: https://acme.example/sale"
    assert drafts["x"] == text and drafts["facebook"] == {"message": text, "link": "https://acme.example/sale"}
    assert drafts["instagram"] == [{"caption": text, "image_url": IMAGE}] and drafts["note"] == ""


def test_a_one_line_note_keeps_its_subject_and_no_image_means_no_instagram_post():
    drafts = draft_posts("post about the new opening hours, 9 to 5 from Monday")
    assert drafts["x"] == "The new opening hours, 9 to 5 from Monday"
    assert drafts["instagram"] == [] and "no image" in drafts["note"]


def test_a_long_note_is_cut_for_x_at_a_word_with_its_link_kept_and_whole_elsewhere():
    words = " ".join(f"word{n}" for n in range(120))
    drafts = draft_posts(f"Post about:\n{words} https://acme.example/a-very-long-path/" + "x" * 80)
    assert x_length(drafts["x"]) <= X_LIMIT and drafts["x"].endswith("x" * 80) and "…" in drafts["x"]
    assert drafts["facebook"]["message"].startswith("Word0 word1") and "word119" in drafts["facebook"]["message"]


def test_an_empty_note_is_refused_with_the_reason():
    with pytest.raises(ValidationError, match="nothing to post"):
        draft_posts("Please post about:\n\n")


def test_a_thread_note_is_one_tweet_per_paragraph_and_long_ones_split_at_sentences():
    long = " ".join(f"Sentence number {n} is here." for n in range(20))
    drafts = draft_thread(f"Post a thread about our first year\n\nWe started in a garage.\n\n{long}\n\nThank you!")
    assert drafts["tweets"][0] == "We started in a garage." and drafts["tweets"][-1] == "Thank you!"
    assert drafts["count"] == len(drafts["tweets"]) >= 4 and all(x_length(t) <= X_LIMIT for t in drafts["tweets"])
    assert " ".join(drafts["tweets"][1:-1]) == long  # nothing lost in the split
    assert draft_thread("Post a thread:\n---\nOne\n---\nTwo\n")["tweets"] == ["One", "Two"]
    with pytest.raises(ValidationError, match="at least two"):
        draft_thread("Post a thread about nothing\n\nOnly one part")


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=3000))
def test_any_note_gives_drafts_that_fit_or_a_clear_refusal(text):
    try:
        drafts = draft_posts(text)
    except ValidationError as err:
        assert err.field == "text"
        return
    assert 0 < x_length(drafts["x"]) <= X_LIMIT and drafts["facebook"]["message"].strip()
    assert all(len(i["caption"]) <= 2200 and i["image_url"].startswith("https://") for i in drafts["instagram"])
    try:
        thread = draft_thread(text)
    except ValidationError:
        return
    assert 2 <= len(thread["tweets"]) <= 25 and all(0 < x_length(t) <= X_LIMIT for t in thread["tweets"])


@given(st.text(max_size=2000))
def test_fit_for_x_always_fits(text):
    assert x_length(fit_for_x(text)) <= X_LIMIT


def test_a_linkedin_note_loses_its_lead_words():
    assert draft_posts("Please post on LinkedIn: we are hiring.")["facebook"]["message"] == "We are hiring."
