import pytest

from tasks.corpora.emoji_names import EMOJI_TEST_FILE, emoji_table, parse_emoji_test

SAMPLE = """# group: Food & Drink
# subgroup: food-fruit
1F34E                                                  ; fully-qualified     # 🍎 E0.6 red apple
# group: People & Body
# subgroup: hand-fingers-open
1F44B 1F3FD                                            ; fully-qualified     # 👋🏽 E1.0 waving hand: medium skin tone
263A                                                   ; unqualified         # ☺ E0.6 smiling face
# group: Component
# subgroup: skin-tone
1F3FB                                                  ; component           # 🏻 E1.0 light skin tone
"""


def test_parse_keeps_fully_qualified_with_group_and_marks_variants():
    table = parse_emoji_test(SAMPLE)
    assert [(e.char, e.name, e.group, e.subgroup, e.is_variant) for e in table] == [
        ("\U0001F34E", "red apple", "Food & Drink", "food-fruit", False),
        ("\U0001F44B\U0001F3FD", "waving hand: medium skin tone", "People & Body", "hand-fingers-open", True),
    ]


@pytest.mark.skipif(not EMOJI_TEST_FILE.is_file(), reason="unicode-data not installed")
def test_installed_table_has_nine_groups():
    table = emoji_table()
    assert len({e.group for e in table}) == 9
    assert any(e.name == "red apple" for e in table)
