"""`kb`: the command line. Each command parses options, opens kb.db, calls the stages, and turns
our exceptions into one line naming the bad input."""

import json
import sys
from pathlib import Path

import click
import yaml
from tqdm import tqdm

from . import curate, evidence, fetch, parse, pipeline, refs, store, synthesis, tag
from .dois import read_doi_lines

DEFAULT_SOURCES = Path(__file__).parent / "sources.yml"
HANDLED = (fetch.EutilsError, curate.CurationError, parse.ParseError, synthesis.SynthesisError, OSError,
           yaml.YAMLError)

db_option = click.option(
    "--db", "db_path", default="kb.db", show_default=True, type=click.Path(dir_okay=False),
    help="The SQLite database to write.",
)


@click.group()
@click.version_option(package_name="ldn-kb")
def cli():
    """The LDN evidence base: PubMed records on low-dose naltrexone for fibromyalgia, tagged,
    curated and stored in SQLite for Datasette.

    E-utilities is reached at $KB_EUTILS_URL (default NCBI's); set NCBI_API_KEY and
    NCBI_EMAIL to identify yourself to NCBI (they are sent, never stored).
    """


@cli.command()
@db_option
@click.option("--dois", "dois_file", type=click.File("r", encoding="utf-8"),
              help="Harvest exactly the DOIs in this file (one per line, # comments); '-' for stdin.")
@click.option("--sources", "sources_file", default=str(DEFAULT_SOURCES), show_default=True,
              type=click.Path(exists=True, dir_okay=False),
              help="DOIs and saved queries to harvest when --dois is not given.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def harvest(db_path, dois_file, sources_file, quiet):
    """Fetch PubMed records by DOI (and, without --dois, refresh and discover new ones).

    \b
    Example:
        KB_EUTILS_URL=http://127.0.0.1:8000/ kb harvest --db kb.db --dois my-dois.txt

    kb.db is replaced only when the whole harvest succeeds.
    """
    client = fetch.EutilsClient()
    started_at = store.now()
    try:
        inputs = list(read_doi_lines(dois_file)) if dois_file else None
        sources = None if dois_file else yaml.safe_load(Path(sources_file).read_text(encoding="utf-8")) or {}
        with pipeline.atomic_database(db_path) as db:
            with progress_bar(quiet) as bar:
                if sources is None:
                    summary = pipeline.harvest_dois(db, client, inputs, progress=bar)
                else:
                    summary = pipeline.harvest_sources(db, client, sources, progress=bar)
            pipeline.record_run(db, "dois" if dois_file else "sources", client, summary, started_at)
    except HANDLED as error:
        raise click.ClickException(f"{error}  ({db_path} left unchanged)")
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted; {db_path} left unchanged") from None
    for line in summary.lines():
        click.echo(line)


def progress_bar(quiet):
    """Records fetched so far, on stderr; hidden with --quiet or when stderr is not a terminal."""
    return tqdm(unit="record", file=sys.stderr, disable=quiet or not sys.stderr.isatty())


@cli.command()
@db_option
@click.option("--curated", "curated_dir", default=str(curate.CURATED_DIR), show_default=True,
              type=click.Path(exists=True, file_okay=False), help="Folder of curated YAML files.")
def build(db_path, curated_dir):
    """Rebuild every derived table offline, from stored PubMed XML and the curated files.

    Re-tags only papers whose text or the tagger version changed.
    """
    try:
        entries = curate.load_curated(curated_dir)
        problems = curate.validate(entries, tag.VOCABULARY_VALUES)
        if problems:
            raise curate.CurationError(problems)
        with pipeline.atomic_database(db_path) as db:
            summary = pipeline.build(db, entries)
            counts = {t: db[t].count for t in ("papers", "tags", "curated_entries", "trials", "links", "effects",
                                                "pooled_estimates")}
    except HANDLED as error:
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
    except (synthesis.SynthesisError, OSError, UnicodeDecodeError) as error:
        raise click.ClickException(str(error))
    click.echo(json.dumps(result, indent=2, ensure_ascii=False) if as_json else synthesis.format_report(result))


@cli.command("tag-text")
def tag_text():
    """Tag one paper read from stdin (first line the title, the rest the abstract).

    Prints one JSON object per tag: {"kind", "value", "detail", "evidence"}.

    \b
    Example:
        printf 'LDN in fibromyalgia\\nWomen took 4.5 mg naltrexone daily.' | kb tag-text
    """
    for found in tag.tag_text(sys.stdin.read()):
        click.echo(json.dumps({k: found[k] for k in ("kind", "value", "detail", "evidence")}))


@cli.command("check-refs")
@click.argument("source", default="-", type=click.File("r", encoding="utf-8"))
@db_option
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
    try:
        db = store.open_readonly(db_path) if Path(db_path).exists() else None
        client = None if offline else fetch.EutilsClient(max_retries=1)
        results = refs.check_references(source.read(), db=db, client=client, offline=offline)
        if save:
            with pipeline.atomic_database(db_path) as target:
                refs.save_checks(target, results)
    except HANDLED as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    click.echo(json.dumps(results, indent=2, ensure_ascii=False) if as_json else refs.format_report(results))
    sys.exit(refs.exit_code(results))
