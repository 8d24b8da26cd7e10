"""What kind of page a curated source is, and which sources come first.

A source's `kind` is the curator's when given, else derived from the URL's host by the one
mapping below. Canonical pages (doi.org, PubMed, PMC, a trial registry) are listed first;
copies, mirrors, aggregators and proxies (`secondary`) last. An unknown host is `secondary`:
a page is only called primary when we know it is.
"""

from urllib.parse import urlparse

# kind -> its label, in the order sources are listed
KINDS = {
    "pubmed": "PubMed",
    "pmc": "PubMed Central",
    "registry": "trial registry",
    "publisher": "publisher",
    "preprint": "preprint or repository",
    "news": "news",
    "secondary": "secondary copy or mirror",
}

# host (or a parent domain of it) -> kind
HOSTS = {
    "pubmed.ncbi.nlm.nih.gov": "pubmed",
    "pmc.ncbi.nlm.nih.gov": "pmc", "europepmc.org": "pmc",
    "clinicaltrials.gov": "registry", "clinicaltrialsregister.eu": "registry",
    "euclinicaltrials.eu": "registry", "anzctr.org.au": "registry", "isrctn.com": "registry",
    "drks.de": "registry", "trialsearch.who.int": "registry", "chictr.org.cn": "registry",
    "ctri.nic.in": "registry",
    "doi.org": "publisher", "mdpi.com": "publisher", "frontiersin.org": "publisher",
    "onlinelibrary.wiley.com": "publisher", "link.springer.com": "publisher",
    "sciencedirect.com": "publisher", "tandfonline.com": "publisher", "journals.sagepub.com": "publisher",
    "bmj.com": "publisher", "thelancet.com": "publisher", "nature.com": "publisher",
    "academic.oup.com": "publisher", "journals.lww.com": "publisher", "cureus.com": "publisher",
    "dovepress.com": "publisher", "karger.com": "publisher", "journals.plos.org": "publisher",
    "jamanetwork.com": "publisher", "eurekaselect.com": "publisher", "mjrheum.org": "publisher",
    "ima.org.il": "publisher", "informahealthcare.com": "publisher",
    "medrxiv.org": "preprint", "biorxiv.org": "preprint", "researchsquare.com": "preprint",
    "preprints.org": "preprint", "osf.io": "preprint", "zenodo.org": "preprint", "ssrn.com": "preprint",
    "eprints.lse.ac.uk": "preprint", "ddd.uab.cat": "preprint", "open.rsyd.dk": "preprint",
    "research.regionh.dk": "preprint", "portal.findresearcher.sdu.dk": "preprint",
    "asu.pure.elsevier.com": "preprint",
    "mdedge.com": "news", "empr.com": "news", "medicaldialogues.in": "news", "reliasmedia.com": "news",
    "consultantlive.com": "news", "springermedicine.com": "news", "medscape.com": "news",
    "medpagetoday.com": "news", "healio.com": "news",
}
# PubMed and PMC pages at their older www.ncbi.nlm.nih.gov addresses
NCBI_PATHS = {"/pubmed": "pubmed", "/pmc": "pmc"}
CANONICAL_KINDS = {"pubmed", "pmc", "registry"}


def host_of(url):
    return (urlparse(str(url)).hostname or "").lower().rstrip(".")


def derived_kind(url):
    """The kind of a page, from its URL's host."""
    host = host_of(url)
    if host in ("ncbi.nlm.nih.gov", "www.ncbi.nlm.nih.gov"):
        path = urlparse(str(url)).path
        return next((kind for prefix, kind in NCBI_PATHS.items() if path.startswith(prefix)), "secondary")
    parts = host.split(".")
    for i in range(len(parts) - 1):
        kind = HOSTS.get(".".join(parts[i:]))
        if kind:
            return kind
    return "secondary"


def is_canonical(url, kind):
    return kind in CANONICAL_KINDS or host_of(url) in ("doi.org", "dx.doi.org")


def ordered(sources):
    """Sources with their kind, canonical pages first, then by kind, else as listed."""
    kinds = list(KINDS)
    labelled = [{**source, "kind": source.get("kind") or derived_kind(source["url"])} for source in sources]
    return sorted(
        labelled,
        key=lambda s: (not is_canonical(s["url"], s["kind"]), kinds.index(s["kind"]) if s["kind"] in kinds else len(kinds)),
    )
