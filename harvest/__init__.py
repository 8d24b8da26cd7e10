"""LDN evidence base: harvest PubMed records on low-dose naltrexone for fibromyalgia into SQLite."""
