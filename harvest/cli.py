"""`kb`: the command line. Each command parses options, opens kb.db, calls the stages, and turns
our exceptions into one line naming the bad input."""

import json
import subprocess
import sys
from pathlib import Path

import click
import yaml
from tqdm import tqdm

from . import (crossref, ctgov, curate, evidence, fetch, findings, http, parse, pipeline, refs, screening, site, store,
               synthesis, tag)
from .dois import read_doi_lines

DEFAULT_SOURCES = Path(__file__).parent / "sources.yml"
HANDLED = (fetch.EutilsError, http.HttpError, curate.CurationError, parse.ParseError, synthesis.SynthesisError,
           store.ShapeError, OSError, yaml.YAMLError)

def db_option(help_text):
    return click.option("--db", "db_path", default="kb.db", show_default=True,
                        type=click.Path(dir_okay=False), help=help_text)


@click.group()
@click.version_option(package_name="ldn-kb")
def cli():
    """The LDN evidence base: PubMed records on low-dose naltrexone for fibromyalgia, tagged,
    curated and stored in SQLite for Datasette.

    E-utilities is reached at $KB_EUTILS_URL (default NCBI's); set NCBI_API_KEY and
    NCBI_EMAIL to identify yourself to NCBI (they are sent, never stored).
    ClinicalTrials.gov is reached at $KB_CTGOV_URL and Crossref at $KB_CROSSREF_URL (defaults:
    the public APIs); KB_CONTACT_EMAIL (else NCBI_EMAIL) is sent to Crossref, never stored.
    """


class InputError(Exception):
    """An input file that cannot be read: one line naming it."""


@cli.command()
@db_option("The SQLite database to update (created when the harvest adds a paper).")
@click.option("--dois", "dois_file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Harvest exactly the DOIs in this file (one per line, # comments); '-' for stdin.")
@click.option("--sources", "sources_file", default=str(DEFAULT_SOURCES), show_default="harvest/sources.yml",
              type=click.Path(dir_okay=False),
              help="DOIs and saved queries to harvest when --dois is not given.")
@click.option("--max-retry-time", default=120.0, show_default=True, type=click.FloatRange(min=0),
              envvar="KB_MAX_RETRY_TIME",
              help="Seconds one request may spend waiting between retries before its service is given up on "
                   "(env KB_MAX_RETRY_TIME).")
@click.option("--quiet", is_flag=True, help="No progress bar and no retry lines.")
def harvest(db_path, dois_file, sources_file, max_retry_time, quiet):
    """Fetch PubMed records by DOI (and, without --dois, refresh and discover new ones), then
    ClinicalTrials.gov records for every NCT id and Crossref notices for every DOI in kb.db.

    \b
    Example:
        KB_EUTILS_URL=http://127.0.0.1:8000/ kb harvest --db kb.db --dois my-dois.txt

    Three stages each land in kb.db on their own, or not at all: PubMed records, registry
    records, notices. When ClinicalTrials.gov or Crossref cannot be reached, kb.db keeps
    what PubMed returned, the summary says what was not refreshed, and the next harvest
    asks again. A run that finds no paper does not create kb.db. While a request is
    retried, one line per retry goes to stderr ("HTTP 429 from esearch; retry 2 of 6 in 2.0 s").

    \b
    Exit status:
      0  every input resolved, every stage landed
      1  the harvest failed (kb.db unchanged), e.g. PubMed unreachable
      2  bad usage, or an input file that cannot be read
      3  harvested, but something was left unresolved: inputs malformed or not
         found, or ClinicalTrials.gov or Crossref not reached (listed)
    """
    try:
        inputs = list(read_doi_lines(_read_text(dois_file).splitlines())) if dois_file else None
        sources = None if dois_file else _read_sources(sources_file)
    except InputError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)

    def say(line):  # on stderr, beside the progress bar
        tqdm.write(str(line), file=sys.stderr)

    on_retry = None if quiet else say
    client = fetch.EutilsClient(max_retry_seconds=max_retry_time, on_retry=on_retry)
    ctgov_client, crossref_client = (
        module.make_client(max_retry_seconds=max_retry_time, on_retry=on_retry) for module in (ctgov, crossref))
    existed = Path(db_path).exists()
    with progress_bar(quiet) as bar:
        def pubmed(db):
            if sources is None:
                return pipeline.harvest_dois(db, client, inputs, progress=bar)
            return pipeline.harvest_sources(db, client, sources, progress=bar)

        run = pipeline.StagedHarvest(db_path, client, ctgov_client, crossref_client, progress=bar, tell=say)
        try:
            summary = run.run(pubmed, "dois" if dois_file else "sources")
        except HANDLED as error:
            _say_malformed(dois_file, inputs)
            raise click.ClickException(f"{error}  ({_kept(db_path, existed, run.landed)})")
        except KeyboardInterrupt:
            _say_malformed(dois_file, inputs)
            raise click.ClickException(f"interrupted; {_kept(db_path, existed, run.landed)}") from None
    for line in summary.lines():
        click.echo(line)
    if not run.created:
        click.echo(f"no paper harvested, so {db_path} was not created")
    if summary.unresolved or summary.failed:
        sys.exit(3)


def _read_text(path):
    """The text of an input file ('-' for stdin), or InputError naming it."""
    try:
        if path == "-":
            return click.get_text_stream("stdin", encoding="utf-8").read()
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path} is not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None


def _read_sources(path):
    try:
        sources = yaml.safe_load(_read_text(path)) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise InputError(f"{path} is not valid YAML{where}") from None
    if not isinstance(sources, dict):
        raise InputError(f"{path} must map dois, queries and keep to their values")
    return sources


def _say_malformed(dois_file, inputs):
    """A failed harvest prints no summary, so the malformed DOI lines it read are said here."""
    for item in inputs or ():
        if item.doi is None:
            click.echo(f"{dois_file} line {item.line}: malformed DOI, not harvested: {item.error}", err=True)


def _kept(db_path, existed, landed):
    """What became of the database after a failed run, said only about a file that exists."""
    if landed:
        return (f"{' and '.join(stage.what for stage in landed)} landed in {db_path}; "
                "the stage under way did not")
    return f"{db_path} left unchanged" if existed else f"no {db_path} created"


def progress_bar(quiet):
    """Records fetched so far, on stderr; hidden with --quiet or when stderr is not a terminal."""
    return tqdm(unit="record", file=sys.stderr, disable=quiet or not sys.stderr.isatty())


@cli.command()
@db_option("The SQLite database to write.")
@click.option("--curated", "curated_dir", default=str(curate.CURATED_DIR), show_default=True,
              type=click.Path(exists=True, file_okay=False), help="Folder of curated YAML files.")
@click.option("--sources", "sources_file", default=str(DEFAULT_SOURCES), show_default="harvest/sources.yml",
              type=click.Path(dir_okay=False), help="Saved PubMed queries, listed in the search log.")
def build(db_path, curated_dir, sources_file):
    """Rebuild every derived table offline, from stored PubMed XML and the curated files.

    Re-tags only papers whose text or the tagger version changed. The search log
    (searches.yml, screening.yml in the curated folder) becomes `searches` and `screening`.
    """
    try:
        entries = curate.load_curated(curated_dir)
        search_log = screening.load(curated_dir, _read_sources(sources_file).get("queries") or [])
        problems = curate.validate(entries, tag.VOCABULARY_VALUES) + screening.validate(search_log, entries)
        if problems:
            raise curate.CurationError(problems)
        with pipeline.atomic_database(db_path) as db:
            summary = pipeline.build(db, entries)
            screening.build(db, entries, search_log)
            counts = {t: db[t].count for t in ("papers", "tags", "curated_entries", "trials", "links", "effects",
                                                "pooled_estimates", "searches", "screening")}
    except (InputError, *HANDLED) as error:
        raise click.ClickException(f"{error}  ({db_path} left unchanged)")
    click.echo(", ".join(f"{table}: {count}" for table, count in counts.items()))
    for pmid, reason in summary.skipped:
        click.echo(f"skipped PMID {pmid}: {reason}")


@cli.command("pool")
@click.option("--db", "db_path", type=click.Path(dir_okay=False),
              help="Pool the effects stored in this kb.db (see --outcome).")
@click.option("--input", "input_csv", type=click.Path(dir_okay=False),
              help="Pool a CSV with columns study,yi,vi (optional year) instead of kb.db.")
@click.option("--outcome", default=evidence.PAIN, show_default=True,
              help="Outcome vocabulary value to pool from kb.db.")
@click.option("--method", type=click.Choice(synthesis.METHODS), default="REML", show_default=True,
              help="tau^2 estimator: REML or DerSimonian-Laird.")
@click.option("--hartung-knapp", is_flag=True, help="Hartung-Knapp t-based CI for the pooled estimate.")
@click.option("--exclude", multiple=True, metavar="KEY",
              help="Leave out a curated entry key, trial key or effect_id (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def pool(db_path, input_csv, outcome, method, hartung_knapp, exclude, as_json):
    """Random-effects meta-analysis: pooled estimate, prediction interval, I2, Q, weights,
    leave-one-out and cumulative by year.

    From kb.db, each trial's effect on the SMD scale (negative favours LDN); papers retracted
    per integrity_status are left out. From a CSV, any effects and variances (metafor's yi, vi).

    \b
    Examples:
        kb pool --db kb.db --outcome pain_intensity --json
        kb pool --input my-studies.csv --method DL
    """
    if bool(db_path) == bool(input_csv):
        raise click.UsageError("give exactly one of --db or --input")
    try:
        if input_csv:
            result = synthesis.meta_analysis(synthesis.read_csv(input_csv), method, hartung_knapp)
        else:
            if not Path(db_path).exists():
                raise click.ClickException(f"{db_path}: no such database")
            result = evidence.pool_outcome(store.open_readonly(db_path), outcome, method, hartung_knapp, exclude)
    except (synthesis.SynthesisError, store.ShapeError, OSError, UnicodeDecodeError) as error:
        raise click.ClickException(str(error))
    click.echo(json.dumps(result, indent=2, ensure_ascii=False) if as_json else synthesis.format_report(result))


@cli.command("tag-text")
def tag_text():
    """Tag one paper read from stdin (first line the title, the rest the abstract).

    Prints one JSON object per tag: {"kind", "value", "detail", "evidence"}.

    \b
    Example:
        printf 'LDN in fibromyalgia\\nWomen took 4.5 mg naltrexone daily.' | kb tag-text

    Empty input is an error (exit status 2).
    """
    text = sys.stdin.read()
    if not text.strip():
        click.echo("Error: no text on stdin (expected a title line, then the abstract)", err=True)
        sys.exit(2)
    for found in tag.tag_text(text):
        click.echo(json.dumps({k: found[k] for k in ("kind", "value", "detail", "evidence")}))


@cli.command("read-finding")
def read_finding():
    """Read results: one JSON object per line on stdin, one answer per line, in order.

    \b
    In:  {"text": ..., "intervention": ..., "comparator": ..., "outcome": ...}
         (only "text" is required; a result statement, or a title and abstract)
    Out: {"finding": "significantly_increased" | "significantly_decreased" |
          "no_significant_difference" | null, "comparison": "between_groups" |
          "within_group" | null, "p_value": "< 0.001" | null, "evidence": ...}

    The finding is the intervention's effect on the outcome relative to the
    comparator, as in the Evidence Inference corpus. Given an abstract (several
    sentences), the reader finds the sentences reporting the outcome's
    comparison and answers from them; "evidence" is the sentence used. A bad
    line stops with a one-line error naming its line number (exit status 2).
    Blank lines are skipped. (A JSON line holds the abstract's line breaks as \\n.)

    \b
    Example:
        echo '{"text": "Pain was lower with LDN than placebo (p = 0.01).", "intervention": "LDN"}' | kb read-finding
    """
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            answer = findings.read_json_line(line)
        except ValueError as error:
            click.echo(f"Error: stdin line {number}: {error}", err=True)
            sys.exit(2)
        click.echo(json.dumps(answer, ensure_ascii=False))


@cli.command("check-refs")
@click.argument("source", default="-", type=click.File("r", encoding="utf-8"))
@db_option("The SQLite database to read (written only with --save).")
@click.option("--offline", is_flag=True, help="Use kb.db only; never touch the network.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array, one object per reference.")
@click.option("--save", is_flag=True, help="Store the results in kb.db (reference_checks).")
def check_refs(source, db_path, offline, as_json, save):
    """Check a reference list (FILE or stdin) against kb.db and PubMed; say what is wrong.

    Exit status: 0 all clean, 1 discrepancies found, 2 a reference unresolved or bad usage.

    \b
    Example:
        kb check-refs --offline references.txt
    """
    if not Path(db_path).exists():
        # Said once, here, rather than in every reference's reason.
        if offline:
            click.echo(f"Error: {db_path} not found, and --offline leaves nothing to check against "
                       "(build it with `kb build`, or drop --offline)", err=True)
            sys.exit(2)
        click.echo(f"Note: {db_path} not found; checking against PubMed only", err=True)
    try:
        db = store.open_readonly(db_path) if Path(db_path).exists() else None
        client = None if offline else fetch.EutilsClient(max_retries=1)
        text = source.read()
        results = refs.check_references(text, db=db, client=client, offline=offline)
        if not results:
            why = "is empty" if not text.strip() else "holds no reference"
            click.echo(f"Error: {_input_name(source)} {why}: nothing to check", err=True)
            sys.exit(2)
        if save:
            with pipeline.atomic_database(db_path) as target:
                refs.save_checks(target, results)
    except HANDLED as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    click.echo(json.dumps(results, indent=2, ensure_ascii=False) if as_json else refs.format_report(results))
    sys.exit(refs.exit_code(results))


def _input_name(stream):
    return "stdin" if stream.name == "<stdin>" else stream.name


@cli.command()
@click.option("--db", "db_path", default="kb.db", show_default=True, type=click.Path(exists=True, dir_okay=False),
              help="The SQLite database to serve (read-only).")
@click.option("--inspect-file", default="build/inspect-data.json", show_default=True,
              type=click.Path(dir_okay=False), help="Datasette's inspect file for the database (written if missing).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8001, show_default=True, type=int)
@click.option("--workers", type=click.IntRange(min=1), default=site.cores, show_default="the number of cores",
              help="Server processes sharing the port (each renders pages on its own core).")
@click.option("--site-dir", default=str(site.ROOT), show_default="the project folder",
              type=click.Path(exists=True, file_okay=False),
              help="Folder holding metadata.yml, settings.json, plugins/, templates/ and static/.")
def serve(db_path, inspect_file, host, port, workers, site_dir):
    """Serve kb.db with Datasette: immutable, read-only, with the settings in settings.json,
    in --workers processes on one port (uvicorn's workers)."""
    if not Path(inspect_file).exists():
        Path(inspect_file).parent.mkdir(parents=True, exist_ok=True)
        site.write_inspect_file(db_path, inspect_file)
    site.serve(db_path, inspect_file, host=host, port=port, workers=workers, root=site_dir)


@cli.command()
@click.option("--db", "db_path", default="kb.db", show_default=True, type=click.Path(exists=True, dir_okay=False),
              help="The SQLite database to publish.")
@click.option("--out", "out_dir", default="build/publish", show_default=True, type=click.Path(file_okay=False),
              help="Directory to write (replaced).")
def publish(db_path, out_dir):
    """Write a deployable Datasette site: Dockerfile (Datasette and plugins pinned), kb.db
    with its inspect file, metadata, settings, plugins, templates and static files."""
    try:
        written = site.publish(db_path, out_dir)
    except (OSError, ValueError, subprocess.CalledProcessError) as error:
        raise click.ClickException(f"publish failed: {error}")
    click.echo(f"{out_dir}: {len(written)} files; deploy with: docker build -t ldn-kb {out_dir}")
