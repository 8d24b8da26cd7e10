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


def test_a_truncated_doi_two_records_complete_stays_unresolved_with_the_reason(make_fake_eutils, make_client, tmp_path):
    """Repair needs exactly one completing record: choosing one of two would be a guess."""
    from fake_eutils import FakeRecord

    from harvest import pipeline

    server = make_fake_eutils(rate_limit=False, records=[
        FakeRecord(pmid="39900001", title="First invented record.", doi="10.5555/ldn.2020.12.a"),
        FakeRecord(pmid="39900002", title="Second invented record.", doi="10.5555/ldn.2020.12.b"),
        FakeRecord(pmid="39900003", title="Third invented record.", doi="10.5555/ldn.2021.7.x"),
    ])
    client = make_client(server, per_second=200)
    db_path = tmp_path / "kb.db"
    with pipeline.atomic_database(db_path) as db:
        summary = pipeline.harvest_dois(db, client, list(read_doi_lines(["10.5555/ldn.2020.12.", "10.5555/ldn.2021.7."])))
        unresolved = {row["doi"]: row["reason"] for row in db["unresolved_dois"].rows}
        lookups = {row["repaired_from"]: row["doi"] for row in db["doi_lookups"].rows}
        papers = {row["paper_id"] for row in db["papers"].rows}
    assert unresolved == {"10.5555/ldn.2020.12": "looks truncated; 2 PubMed records complete it "
                                                 "(10.5555/ldn.2020.12.a, 10.5555/ldn.2020.12.b), so none is chosen"}
    assert summary.unresolved == unresolved
    # The control: one completing record is a repair, and only that record is stored.
    assert lookups == {"10.5555/ldn.2021.7": "10.5555/ldn.2021.7.x"}
    assert papers == {"39900003"}
