"""How entries relate: the link vocabularies of curated data and of PubMed, with their labels.

The parser keeps PubMed's links of these types, curated files may use these relations,
and the views show each link from both sides with these labels.
"""

# links.relation -> (label seen from from_key, label seen from to_key)
CURATED_RELATIONS = {
    "correction_of": ("correction of", "corrected by"),
    "retraction_of": ("retraction of", "retracted by"),
    "expression_of_concern_for": ("expression of concern for", "expression of concern in"),
    "comment_on": ("comment on", "commented on by"),
    "reply_to": ("reply to", "replied to by"),
    "reanalysis_of": ("re-analysis of", "re-analysed by"),
    "secondary_analysis_of": ("secondary analysis of", "has secondary analysis"),
    "protocol_of": ("protocol of", "has protocol"),
    "included_in": ("included in review", "review including"),
    "reports_trial": ("reports trial", "reported by"),
}

# PubMed CommentsCorrections RefType -> (its label, the RefType of the same link seen
# from the other paper). PubMed usually records both sides; deriving the reverse keeps
# the link visible when only one side is in kb.db.
PUBMED_RELATIONS = {
    "ErratumIn": ("erratum in", "ErratumFor"),
    "ErratumFor": ("erratum for", "ErratumIn"),
    "RetractionIn": ("retraction in", "RetractionOf"),
    "RetractionOf": ("retraction of", "RetractionIn"),
    "PartialRetractionIn": ("partial retraction in", "PartialRetractionOf"),
    "PartialRetractionOf": ("partial retraction of", "PartialRetractionIn"),
    "ExpressionOfConcernIn": ("expression of concern in", "ExpressionOfConcernFor"),
    "ExpressionOfConcernFor": ("expression of concern for", "ExpressionOfConcernIn"),
    "CommentIn": ("comment in", "CommentOn"),
    "CommentOn": ("comment on", "CommentIn"),
    "UpdateIn": ("update in", "UpdateOf"),
    "UpdateOf": ("update of", "UpdateIn"),
    "RepublishedIn": ("republished in", "RepublishedFrom"),
    "RepublishedFrom": ("republished from", "RepublishedIn"),
    "ReprintIn": ("reprint in", "ReprintOf"),
    "ReprintOf": ("reprint of", "ReprintIn"),
    "CorrectedandRepublishedIn": ("corrected and republished in", "CorrectedandRepublishedFrom"),
    "CorrectedandRepublishedFrom": ("corrected and republished from", "CorrectedandRepublishedIn"),
    "SummaryForPatientsIn": ("summary for patients in", "OriginalReportIn"),
    "OriginalReportIn": ("original report in", "SummaryForPatientsIn"),
}
