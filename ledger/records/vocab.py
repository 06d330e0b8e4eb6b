"""The vocabularies and patterns of record schema version 1.

Pure data, shared by the API (which validates records with it), the query
index and the pages (which label and filter by it). Every vocabulary and
pattern lives here and nowhere else in Python;
``docs/schema/record-v1.schema.json`` repeats each under ``$defs`` and
``tests/api/test_record_schema.py`` checks that the two are equal, so they
cannot drift. Change both together, and say so in ``docs/records.md``.

Sources:

- DSA categories, keywords and content types: the EU DSA Transparency
  Database's statement-of-reasons API, version 2 (in force since 1 July 2025),
  as documented in the repository digital-services-act/transparency-database,
  ``resources/markdown/api-documentation-two.md`` (``STATEMENT_CATEGORY_*``,
  ``KEYWORD_*``, ``CONTENT_TYPE_*``), written here lower-case without the prefix.
- Country and language codes: ISO 3166-1 alpha-2 and ISO 639-1, as shipped
  in Debian's ``iso-codes`` 4.15.0 (``iso_3166-1.json``, the ``alpha_2``
  codes of ``iso_639-2.json``).
"""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    """A long vocabulary as a word list: easier to check against its source than one item a line."""
    return tuple(text.split())


RECORD_TYPES = ("decision", "appeal", "amendment")

DECISION_GROUNDS = ("terms", "illegal", "both")

# 16 statement categories of the DSA Transparency Database API v2.
CATEGORIES = (
    "animal_welfare",
    "consumer_information",
    "cyber_violence",
    "cyber_violence_against_women",
    "data_protection_and_privacy_violations",
    "illegal_or_harmful_speech",
    "intellectual_property_infringements",
    "negative_effects_on_civic_discourse_or_elections",
    "not_specified_notice",
    "other_violation_tc",
    "protection_of_minors",
    "risk_for_public_security",
    "scams_and_fraud",
    "self_harm",
    "unsafe_and_prohibited_products",
    "violence",
)

# The DSA API v2 ``category_specification`` keywords, sorted, "other" last.
# "stalking" is a version-1 keyword the v2 API documentation still lists
# although the v2 category tree no longer places it under any category.
KEYWORDS = _words(
    """
    adult_sexual_material age_specific_restrictions age_specific_restrictions_minors animal_harm
    biometric_data_breach bullying_against_girls child_sexual_abuse_material child_sexual_abuse_material_deepfake
    content_promoting_eating_disorders coordinated_harm copyright_infringement cyber_bullying_intimidation
    cyber_harassment cyber_harassment_against_women cyber_incitement cyber_stalking cyber_stalking_against_women
    data_falsification defamation design_infringement discrimination female_gendered_disinformation
    geographic_indications_infringement geographical_requirements goods_services_not_permitted
    grooming_sexual_enticement_minors hate_speech hidden_advertisement human_exploitation human_trafficking
    illegal_organizations impersonation_account_hijacking inauthentic_accounts inauthentic_listings
    inauthentic_user_reviews incitement_against_women incitement_violence_hatred insufficient_information_on_traders
    language_requirements misinformation_disinformation misleading_info_consumer_rights
    misleading_info_goods_services missing_processing_ground non_consensual_image_sharing
    non_consensual_image_sharing_against_women non_consensual_material_deepfake
    non_consensual_material_deepfake_against_women noncompliance_pricing nudity patent_infringement phishing
    prohibited_products pyramid_schemes right_to_be_forgotten risk_environmental_damage risk_public_health
    self_mutilation stalking suicide terrorist_content trade_secret_infringement trademark_infringement
    trafficking_women_girls unlawful_sale_animals unsafe_challenges unsafe_products violation_eu_law
    violation_national_law other
    """
)

SEVERITIES = ("low", "medium", "high", "critical")

ACTIONS = (
    "none",
    "label",
    "interstitial",
    "reduce_reach",
    "age_restrict",
    "restrict_interaction",
    "geo_block",
    "demonetize",
    "feature_limit",
    "remove_content",
    "temporary_suspension",
    "permanent_ban",
)
# Actions without an end: they never carry action_ends_at. Every other action
# may; temporary_suspension must.
UNLIMITED_ACTIONS = ("none", "remove_content", "permanent_ban")

EXEMPTION_TYPES = (
    "newsworthiness",
    "public_interest",
    "satire_or_counter_speech",
    "educational_or_documentary",
    "technical_correction",
    "other",
)
REVIEW_PATHS = ("standard", "secondary_high_profile", "policy_escalation", "legal")
INTERIM_STATES = ("visible", "hidden", "not_applicable")
DETECTION_SOURCES = (
    "automated",
    "user_report",
    "trusted_flagger",
    "government_request",
    "court_order",
    "internal_staff",
    "media_or_public_inquiry",
    "other",
)
AUTOMATED_DECISIONS = ("fully", "partially", "none")
STATE_INVOLVEMENTS = ("none", "request", "order")

PUBLIC_CLASSES = (
    "head_of_state",
    "legislator",
    "candidate",
    "government_official",
    "party_account",
    "journalist",
    "other_public_figure",
)
ORDINARY_USER = "ordinary_user"
#: Election administrators and poll workers (schema 1, protection addition).
#: Most are private people doing a civic job, so they get the ordinary users'
#: privacy rules, as an account and as a target: nothing that could name one.
ELECTION_WORKER = "election_worker"
#: The classes whose records follow the ordinary users' privacy rules.
PRIVATE_CLASSES = (ELECTION_WORKER, ORDINARY_USER)
#: The classes grouped as "political" (the evenness statistics' political_any).
POLITICAL_CLASSES = ("head_of_state", "legislator", "candidate", "government_official", "party_account")
ACCOUNT_CLASSES = PUBLIC_CLASSES + PRIVATE_CLASSES
#: Whom a decision's content was aimed at (``target.class``): an account
#: class, or a group of people (a party, a community, "poll workers").
GROUP = "group"
TARGET_CLASSES = ACCOUNT_CLASSES + (GROUP,)
#: The kinds of rule a platform marks as abuse (``rule.abuse``): a decision
#: under such a rule must say whom the content targeted.
ABUSE_KINDS = ("harassment", "threat", "incitement")
#: Who reported the content (``reporter_class``): never who they are.
REPORTER_CLASSES = ("target_self", "public_account", "ordinary_user", "trusted_flagger", "government_body")
CLASS_BASES = ("office_record", "platform_label", "self_declared", "platform_list")
# Ordinary users are top-coded at 10k+ so that a bucket cannot single them out.
PUBLIC_FOLLOWER_BUCKETS = ("<1k", "1k-10k", "10k-100k", "100k-1M", ">1M")
ORDINARY_FOLLOWER_BUCKETS = ("<1k", "1k-10k", "10k+")

# DSA API v2 CONTENT_TYPE_*; "other" last, as the DSA lists it.
CONTENT_TYPES = ("app", "audio", "image", "product", "synthetic_media", "text", "video", "other")

APPEAL_CHANNELS = ("internal", "out_of_court_body", "oversight_board", "court")
APPEAL_OUTCOMES = ("pending", "upheld", "reversed", "modified")
AMENDMENT_REASONS = ("data_error", "late_classification", "policy_reinterpretation", "duplicate", "legal_order")

# ISO 3166-1 alpha-2: the 249 officially assigned codes.
COUNTRY_CODES = _words(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO
    FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE
    JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO
    MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
    PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM
    TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """
)
# ISO 639-1: the 184 two-letter language codes.
LANGUAGE_CODES = _words(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el
    en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu
    ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na
    nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so
    sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
    """
)
GLOBAL = "GLOBAL"
JURISDICTIONS = COUNTRY_CODES + ("EU",)

#: Every vocabulary, by its name under ``$defs`` in the JSON Schema.
ENUMS: dict[str, tuple[str, ...]] = {
    "record_type": RECORD_TYPES,
    "decision_ground": DECISION_GROUNDS,
    "category": CATEGORIES,
    "keyword": KEYWORDS,
    "severity": SEVERITIES,
    "action": ACTIONS,
    "unlimited_action": UNLIMITED_ACTIONS,
    "exemption_type": EXEMPTION_TYPES,
    "review_path": REVIEW_PATHS,
    "interim_state": INTERIM_STATES,
    "detection_source": DETECTION_SOURCES,
    "automated_decision": AUTOMATED_DECISIONS,
    "state_involvement": STATE_INVOLVEMENTS,
    "account_class": ACCOUNT_CLASSES,
    "public_class": PUBLIC_CLASSES,
    "private_class": PRIVATE_CLASSES,
    "target_class": TARGET_CLASSES,
    "abuse_kind": ABUSE_KINDS,
    "reporter_class": REPORTER_CLASSES,
    "class_basis": CLASS_BASES,
    "public_follower_bucket": PUBLIC_FOLLOWER_BUCKETS,
    "ordinary_follower_bucket": ORDINARY_FOLLOWER_BUCKETS,
    "content_type": CONTENT_TYPES,
    "appeal_channel": APPEAL_CHANNELS,
    "appeal_outcome": APPEAL_OUTCOMES,
    "amendment_reason": AMENDMENT_REASONS,
    "country": COUNTRY_CODES,
    "jurisdiction": JURISDICTIONS,
    "language": LANGUAGE_CODES,
}

# Patterns, by their name under ``$defs``. ECMA-262 and Python ``re`` read
# them alike; Python callers must use ``re.fullmatch``, because Python's ``$``
# also matches before a final newline and ECMA-262's does not.
_YMD = r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"

# Characters no string of a record may hold, as a regular-expression class:
# the C0 controls but tab and line feed, DEL, and the C1 controls. U+0000
# cannot be stored by PostgreSQL (text or jsonb), so allowing it would make
# the two databases accept different records; the others have no use in text
# and can rewrite what a terminal shows (ESC and U+009B start control
# sequences). CR goes too: a line break has one form, so two records that
# read alike are alike, and a bare CR cannot hide the start of a line.
CONTROL_CHARACTERS = r"\x00-\x08\x0b-\x1f\x7f-\x9f"

# A short legal citation (an ordinary user's legal_reference): an optional
# country code, an instrument written as an abbreviation that starts and ends
# upper-case (DSA, StGB, NetzDG, with a year if needed) or as a kind and a
# number (Regulation (EU) 2016/679, Loi 2018-1202), then provisions:
# "DSA Art. 16", "DE StGB § 130", "IT CP art. 604-bis", "DE BGB §§ 823, 1004".
# No word of running text fits, so neither does a name, handle or address.
_PROVISION_NUMBER = r"[A-Z]?[0-9]{1,4}[a-z]?([.-]([0-9]{1,4}[a-z]?|bis|ter|quater))*(\(([0-9]{1,3}|[a-z])\))*"
_INSTRUMENT = (
    r"([A-Z][A-Za-z]{0,10}[A-Z]( [0-9]{4})?"
    r"|(Regulation|Directive|Reg\.|Dir\.|Law|Loi) (\(E[CU]\) )?[0-9]{4}([/-][0-9]{1,5})?(/E[CU])?)"
)
_CITATION = rf"([A-Z]{{2}} )?{_INSTRUMENT} (Art\.|art\.|§|§§|s\.) {_PROVISION_NUMBER}(, {_PROVISION_NUMBER})*"
#: The longest legal_reference about an ordinary user.
LEGAL_CITATION_MAX = 80
PATTERNS: dict[str, str] = {
    "platform": r"^[a-z0-9][a-z0-9-]{0,62}$",
    "record_id": r"^[A-Za-z0-9._:-]{1,128}$",
    # The record_id of an appeal, and of a decision or amendment about an
    # ordinary user: at most one tag of 1-3 letters (dec, apl, TVD), then
    # digits and separators only, so that it cannot spell a name or handle.
    "numbered_record_id": r"^([A-Za-z]{1,3}[.:_-])?[0-9][0-9._:-]{0,123}$",
    "rule_id": r"^[A-Za-z0-9._:/-]{1,128}$",
    "subject_key": r"^[A-Za-z0-9_-]{16,128}$",
    # An ordinary user's subject_key: HMAC-SHA-256 (RFC 2104, FIPS 180-4) of
    # the account under the platform's secret key, in lower-case hex.
    "pseudonym": r"^[0-9a-f]{64}$",
    # An ordinary user's rule.version and exemption.policy.version: numbers
    # joined by dots or hyphens (7, v4.2, 2026-03, 2026-03-01).
    "short_version": r"^v?[0-9]{1,4}([.-][0-9]{1,4}){0,3}$",
    "legal_citation": rf"^{_CITATION}(; {_CITATION})*$",
    "wikidata_qid": r"^Q[1-9][0-9]*$",
    "uuid": r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    # An absolute https URL: a dotted host name, an optional port, then only
    # RFC 3986 characters (non-ASCII must be percent-encoded or punycode).
    "https_url": r"^https://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?([/?#][A-Za-z0-9._~:/?#@!$&'()*+,;=%\[\]-]*)?$",
    # The same without a query or fragment (an ordinary user's rule.url).
    "https_path_url": r"^https://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?(/[A-Za-z0-9._~:/@!$&'()*+,;=%-]*)?$",
    # RFC 3339 in UTC only: upper-case T and Z, no offset, 0-9 fraction digits.
    "date_time": rf"^{_YMD}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{{1,9}})?Z$",
    "date": rf"^{_YMD}$",
    # Free text: no control character but tab and line feed (CONTROL_CHARACTERS).
    "text": rf"^[^{CONTROL_CHARACTERS}]*$",
}
