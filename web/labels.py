"""Human labels for every vocabulary of the record schema (``ledger.records.vocab``).

The pages never show a raw code where a reader expects words; the code is
still shown next to the label where it matters (filters, the JSON API), so
a reader can match the page with the data. ``tests/web/test_web.py`` checks
that :data:`LABELS` has a label for every value of every vocabulary in
``ledger.records.vocab.ENUMS``, so a new value cannot ship unlabelled.
"""

from __future__ import annotations

from ledger.records.vocab import KEYWORDS
from web.countries import COUNTRY_NAMES
from web.languages import LANGUAGE_NAMES

RECORD_TYPES = {"decision": "Decision", "appeal": "Appeal", "amendment": "Amendment"}

DECISION_GROUNDS = {
    "terms": "The platform's terms of service",
    "illegal": "The law (illegal content)",
    "both": "Both the terms of service and the law",
}

# The DSA Transparency Database's own English names for its categories.
CATEGORIES = {
    "animal_welfare": "Animal welfare",
    "consumer_information": "Consumer information infringements",
    "cyber_violence": "Cyber violence",
    "cyber_violence_against_women": "Cyber violence against women",
    "data_protection_and_privacy_violations": "Data protection and privacy violations",
    "illegal_or_harmful_speech": "Illegal or harmful speech",
    "intellectual_property_infringements": "Intellectual property infringements",
    "negative_effects_on_civic_discourse_or_elections": "Negative effects on civic discourse or elections",
    "not_specified_notice": "Not specified in the notice",
    "other_violation_tc": "Other violation of the terms of service",
    "protection_of_minors": "Protection of minors",
    "risk_for_public_security": "Risk for public security",
    "scams_and_fraud": "Scams and fraud",
    "self_harm": "Self-harm",
    "unsafe_and_prohibited_products": "Unsafe and prohibited products",
    "violence": "Violence",
}

# Keywords read well enough with underscores as spaces; these need more.
_KEYWORD_WORDS = {
    "age_specific_restrictions_minors": "Age-specific restrictions concerning minors",
    "child_sexual_abuse_material_deepfake": "Child sexual abuse material (deepfake)",
    "cyber_bullying_intimidation": "Cyber bullying and intimidation",
    "goods_services_not_permitted": "Goods or services not permitted",
    "grooming_sexual_enticement_minors": "Grooming or sexual enticement of minors",
    "impersonation_account_hijacking": "Impersonation or account hijacking",
    "incitement_violence_hatred": "Incitement to violence or hatred",
    "insufficient_information_on_traders": "Insufficient information on traders",
    "misinformation_disinformation": "Misinformation or disinformation",
    "misleading_info_consumer_rights": "Misleading information about consumer rights",
    "misleading_info_goods_services": "Misleading information about goods or services",
    "non_consensual_material_deepfake": "Non-consensual material (deepfake)",
    "non_consensual_material_deepfake_against_women": "Non-consensual material against women (deepfake)",
    "noncompliance_pricing": "Non-compliance with pricing rules",
    "risk_environmental_damage": "Risk of environmental damage",
    "risk_public_health": "Risk to public health",
    "trafficking_women_girls": "Trafficking in women and girls",
    "unlawful_sale_animals": "Unlawful sale of animals",
    "violation_eu_law": "Violation of EU law",
    "violation_national_law": "Violation of national law",
    "other": "Other",
}

SEVERITIES = {"low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"}

ACTIONS = {
    "none": "No action",
    "label": "Label added",
    "interstitial": "Warning screen before the content",
    "reduce_reach": "Reach reduced",
    "age_restrict": "Age-restricted",
    "restrict_interaction": "Interactions restricted",
    "geo_block": "Blocked in some countries",
    "demonetize": "Demonetised",
    "feature_limit": "Features limited",
    "remove_content": "Content removed",
    "temporary_suspension": "Account suspended for a time",
    "permanent_ban": "Account banned permanently",
}

EXEMPTION_TYPES = {
    "newsworthiness": "Newsworthiness",
    "public_interest": "Public interest",
    "satire_or_counter_speech": "Satire or counter-speech",
    "educational_or_documentary": "Educational or documentary",
    "technical_correction": "Technical correction",
    "other": "Other exemption",
}

REVIEW_PATHS = {
    "standard": "Standard review",
    "secondary_high_profile": "Secondary review for high-profile accounts",
    "policy_escalation": "Escalated to the policy team",
    "legal": "Legal review",
}

INTERIM_STATES = {
    "visible": "Stayed visible during review",
    "hidden": "Hidden during review",
    "not_applicable": "Not applicable",
}

DETECTION_SOURCES = {
    "automated": "Automated detection",
    "user_report": "A user's report",
    "trusted_flagger": "A trusted flagger",
    "government_request": "A government request",
    "court_order": "A court order",
    "internal_staff": "The platform's staff",
    "media_or_public_inquiry": "A media or public inquiry",
    "other": "Other source",
}

AUTOMATED_DECISIONS = {
    "fully": "Fully automated",
    "partially": "Partly automated",
    "none": "Not automated (decided by people)",
}

STATE_INVOLVEMENTS = {
    "none": "None",
    "request": "A public authority asked for it",
    "order": "A public authority ordered it",
}

ACCOUNT_CLASSES = {
    "head_of_state": "Head of state",
    "legislator": "Legislator",
    "candidate": "Candidate for office",
    "government_official": "Government official",
    "party_account": "Political party account",
    "journalist": "Journalist",
    "other_public_figure": "Other public figure",
    "election_worker": "Election worker",
    "ordinary_user": "Ordinary user",
}

TARGET_CLASSES = ACCOUNT_CLASSES | {"group": "A group of people"}

ABUSE_KINDS = {"harassment": "Harassment", "threat": "Threats", "incitement": "Incitement"}

REPORTER_CLASSES = {
    "target_self": "The target themself",
    "public_account": "A public-class account",
    "ordinary_user": "An ordinary user",
    "trusted_flagger": "A trusted flagger",
    "government_body": "A government body",
}

CLASS_BASES = {
    "office_record": "Official record of the office",
    "platform_label": "The platform's own label",
    "self_declared": "Declared by the account",
    "platform_list": "The platform's list of public accounts",
}

_BUCKETS = {
    "<1k": "Fewer than 1,000",
    "1k-10k": "1,000 to 10,000",
    "10k-100k": "10,000 to 100,000",
    "100k-1M": "100,000 to 1 million",
    ">1M": "More than 1 million",
    "10k+": "10,000 or more",
}

CONTENT_TYPES = {
    "app": "App",
    "audio": "Audio",
    "image": "Image",
    "product": "Product",
    "synthetic_media": "Synthetic media",
    "text": "Text",
    "video": "Video",
    "other": "Other",
}

APPEAL_CHANNELS = {
    "internal": "The platform's internal appeal",
    "out_of_court_body": "An out-of-court dispute settlement body",
    "oversight_board": "An oversight board",
    "court": "A court",
}

APPEAL_OUTCOMES = {
    "pending": "Pending",
    "upheld": "Upheld (the decision stands)",
    "reversed": "Reversed",
    "modified": "Modified",
}

#: An appeal's outcome as a card says it: "Reversed on appeal, 2 November 2026".
OUTCOME_WORDS = {"upheld": "Upheld", "reversed": "Reversed", "modified": "Modified"}

AMENDMENT_REASONS = {
    "data_error": "A data error was corrected",
    "late_classification": "The case was classified later",
    "policy_reinterpretation": "The policy was reinterpreted",
    "duplicate": "A duplicate record",
    "legal_order": "A legal order",
}

JURISDICTIONS = COUNTRY_NAMES | {"EU": "European Union"}
#: Territorial scope: countries, or the whole world.
TERRITORIES = {"GLOBAL": "Worldwide"} | COUNTRY_NAMES


def _keywords() -> dict[str, str]:
    return {k: _KEYWORD_WORDS.get(k) or k.replace("_", " ").capitalize() for k in KEYWORDS}


#: Every vocabulary by its name in ``ledger.records.vocab.ENUMS``.
LABELS: dict[str, dict[str, str]] = {
    "record_type": RECORD_TYPES,
    "decision_ground": DECISION_GROUNDS,
    "category": CATEGORIES,
    "keyword": _keywords(),
    "severity": SEVERITIES,
    "action": ACTIONS,
    "unlimited_action": ACTIONS,
    "exemption_type": EXEMPTION_TYPES,
    "review_path": REVIEW_PATHS,
    "interim_state": INTERIM_STATES,
    "detection_source": DETECTION_SOURCES,
    "automated_decision": AUTOMATED_DECISIONS,
    "state_involvement": STATE_INVOLVEMENTS,
    "account_class": ACCOUNT_CLASSES,
    "public_class": ACCOUNT_CLASSES,
    "private_class": ACCOUNT_CLASSES,
    "target_class": TARGET_CLASSES,
    "abuse_kind": ABUSE_KINDS,
    "reporter_class": REPORTER_CLASSES,
    "class_basis": CLASS_BASES,
    "public_follower_bucket": _BUCKETS,
    "ordinary_follower_bucket": _BUCKETS,
    "content_type": CONTENT_TYPES,
    "appeal_channel": APPEAL_CHANNELS,
    "appeal_outcome": APPEAL_OUTCOMES,
    "amendment_reason": AMENDMENT_REASONS,
    "country": COUNTRY_NAMES,
    "jurisdiction": JURISDICTIONS,
    "language": LANGUAGE_NAMES,
    "territory": TERRITORIES,
    "follower_bucket": _BUCKETS,
}


def label(vocab: str, value: object) -> str:
    """The label of ``value`` in ``vocab``; the value itself if it has none
    (a record is shown even if a later schema adds a value this table lacks)."""
    if value is None:
        return "—"
    return LABELS[vocab].get(str(value), str(value))


def yes_no(value: object) -> str:
    if value is None:
        return "—"
    return "Yes" if value else "No"
