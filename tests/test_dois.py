import pytest

from harvest.dois import DOIError, looks_truncated, normalise_doi, read_doi_lines


@pytest.mark.parametrize(
    "written, expected",
    [
        ("10.1002/art.37734", "10.1002/art.37734"),
        ("doi:10.1002/ART.37734", "10.1002/art.37734"),
        ("DOI: 10.1002/art.37734.", "10.1002/art.37734"),
        ("https://doi.org/10.1002/art.37734", "10.1002/art.37734"),
        ("http://dx.doi.org/10.1002/art.37734);", "10.1002/art.37734"),
        ("dx.doi.org/10.1111/j.1526-4637.2009.00613.x", "10.1111/j.1526-4637.2009.00613.x"),
        ("<10.1016/0005-2795(76)90109-4>", "10.1016/0005-2795(76)90109-4"),
    ],
)
def test_normalise_accepts_the_forms_people_write(written, expected):
    assert normalise_doi(written) == expected


@pytest.mark.parametrize("bad", ["", "art.37734", "10.12/x", "https://example.org/10.1002", "11.1002/art"])
def test_normalise_rejects_non_dois_naming_the_input(bad):
    with pytest.raises(DOIError) as error:
        normalise_doi(bad)
    assert repr(bad.strip()) in str(error.value)


def test_truncation_is_seen_in_the_text_as_written():
    assert looks_truncated("10.1111/j.1526-4637.2009.00613.")
    assert not looks_truncated("10.1002/art.37734")


def test_doi_file_lines_comments_and_errors_keep_their_line_numbers():
    lines = [
        "# DOIs cited by the article\n",
        "doi:10.1111/j.1526-4637.2009.00613.\n",
        "\n",
        "https://doi.org/10.1002/ART.37734  # the crossover trial\n",
        "not-a-doi\n",
    ]
    items = list(read_doi_lines(lines))
    assert [(i.line, i.doi) for i in items] == [
        (2, "10.1111/j.1526-4637.2009.00613"),
        (4, "10.1002/art.37734"),
        (5, None),
    ]
    assert items[1].original == "https://doi.org/10.1002/ART.37734"
    assert "not-a-doi" in items[2].error
