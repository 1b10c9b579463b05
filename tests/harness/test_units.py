import pytest

from harness.units import UnitError, format_length, parse_count, parse_length


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("1k", 1024),
        ("4K", 4096),
        ("64k", 65536),
        ("1m", 1048576),
        ("2M", 2097152),
        (512, 512),
        ("512", 512),
        ("1.5k", 1536),
    ],
)
def test_parse_length_human_units(text, tokens):
    assert parse_length(text) == tokens


@pytest.mark.parametrize("bad", ["12q", "k", "", "-4k", 0, "0.3k", True])
def test_parse_length_rejects_with_field_name(bad):
    with pytest.raises(UnitError, match="sweep.context"):
        parse_length(bad, "sweep.context")


@pytest.mark.parametrize("bad", [0, -1, "2.5", "eight"])
def test_parse_count_rejects(bad):
    with pytest.raises(UnitError, match="sweep.batch"):
        parse_count(bad, "sweep.batch")


def test_format_length_round_trips():
    for n in (1024, 4096, 65536, 1048576, 1000, 1536):
        assert parse_length(format_length(n)) == n
