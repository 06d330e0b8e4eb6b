"""The demo's world: three fictional platforms, their rules, and the public
figures whose decisions they record. Pure data.

Every name is invented (most are the word "example" in some European
language, or a country's placeholder name such as Erika Mustermann) and
every URL is under ``.example``, a reserved top-level domain. Laws cited in
legal references are real (their short citations abbreviate them); the courts'
case numbers are marked fictional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ledger.records.vocab import POLITICAL_CLASSES

#: The EU's 27 member states (ISO 3166-1; Greece is GR): the scope of an EU-wide order.
EU27 = tuple(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)

# Actions among violations found and not exempted, by severity. Adverse
# actions (remove_content, temporary_suspension, permanent_ban, geo_block)
# grow with severity; the profiles differ between kinds of rule, never
# between kinds of account. False claims about elections are mostly
# labelled or shown less, as platforms do.
SPEECH = {
    "low": {"label": 30, "reduce_reach": 25, "interstitial": 10, "restrict_interaction": 10, "remove_content": 20,
            "feature_limit": 5},
    "medium": {"label": 8, "reduce_reach": 17, "interstitial": 5, "restrict_interaction": 10, "feature_limit": 10,
               "remove_content": 40, "temporary_suspension": 8, "geo_block": 2},
    "high": {"reduce_reach": 7, "feature_limit": 8, "remove_content": 50, "temporary_suspension": 25,
             "geo_block": 5, "permanent_ban": 5},
    "critical": {"remove_content": 35, "temporary_suspension": 25, "permanent_ban": 35, "geo_block": 5},
}  # fmt: skip
VIDEO = {
    "low": {"label": 20, "age_restrict": 20, "demonetize": 25, "reduce_reach": 15, "remove_content": 20},
    "medium": {"age_restrict": 15, "demonetize": 20, "interstitial": 10, "remove_content": 45,
               "temporary_suspension": 7, "geo_block": 3},
    "high": {"demonetize": 10, "age_restrict": 5, "remove_content": 55, "temporary_suspension": 20, "geo_block": 5,
             "permanent_ban": 5},
    "critical": {"remove_content": 40, "temporary_suspension": 20, "permanent_ban": 35, "geo_block": 5},
}  # fmt: skip
COMMERCE = {
    "low": {"label": 25, "feature_limit": 30, "reduce_reach": 15, "remove_content": 30},
    "medium": {"feature_limit": 25, "remove_content": 60, "temporary_suspension": 10, "geo_block": 5},
    "high": {"feature_limit": 10, "remove_content": 55, "temporary_suspension": 25, "permanent_ban": 10},
    "critical": {"remove_content": 30, "temporary_suspension": 20, "permanent_ban": 50},
}  # fmt: skip

CIVIC = {
    "low": {"label": 50, "reduce_reach": 30, "interstitial": 10, "remove_content": 10},
    "medium": {"label": 35, "reduce_reach": 25, "interstitial": 10, "restrict_interaction": 10, "remove_content": 20},
    "high": {"label": 15, "reduce_reach": 15, "restrict_interaction": 10, "remove_content": 40,
             "temporary_suspension": 15, "geo_block": 5},
    "critical": {"remove_content": 50, "temporary_suspension": 30, "permanent_ban": 15, "geo_block": 5},
}  # fmt: skip
#: Actions when an exemption kept the content up: never an adverse one.
EXEMPT_ACTIONS = {"label": 50, "none": 20, "interstitial": 15, "age_restrict": 10, "reduce_reach": 5}
#: Actions when no violation was found: mostly nothing, sometimes a context label.
NO_VIOLATION_ACTIONS = {"none": 90, "label": 10}

COMMON_EXEMPTIONS = {"public_interest": 35, "satire_or_counter_speech": 25, "educational_or_documentary": 20,
                     "newsworthiness": 10, "technical_correction": 5, "other": 5}  # fmt: skip


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: each rule exists once
class Rule:
    """One platform rule: what it covers and how cases under it are decided.

    Rates and mixes here hold for every kind of account alike; the planted
    disparities (demo/__init__.py) are the only departures.
    """

    id: str
    category: str
    weight: float
    versions: tuple[tuple[str, str], ...]  # (version, in force from YYYY-MM-DD), oldest first
    keywords: tuple[str, ...]
    severity: tuple[float, float, float, float]  # low, medium, high, critical
    violation: float  # P(violation found)
    exemption: float  # P(exemption applied | violation found)
    actions: Mapping[str, Mapping[str, float]]
    grounds: Mapping[str, float]  # decision_ground mix
    # (country or EU, legal reference, the same as a short citation): ordinary
    # users' records carry the citation (docs/records.md, "Ordinary users").
    legal: tuple[tuple[str, str, str], ...] = ()
    exemption_types: Mapping[str, float] = field(default_factory=lambda: COMMON_EXEMPTIONS)
    content: tuple[tuple[str, ...], ...] = (("text",),)
    claims: tuple[str, ...] = ()  # what the content did, for statements
    peak: str | None = None  # YYYY-MM-DD around which cases cluster (an election)
    abuse: str | None = None  # rule.abuse: the rule is against harassment, threats or incitement (demo/protection.py)


@dataclass(frozen=True, eq=False)
class Platform:
    slug: str
    name: str
    host: str
    weight: float
    classes: Mapping[str, float]  # account class mix
    rules: tuple[Rule, ...]
    median_hours: float  # median time from flag to decision
    rotates_at: str | None = None  # RFC 3339: records submitted from then on are signed with a second key


CHIRP_CIVIC = "civic-integrity/election-misinformation"
FACESPACE_HATE = "community-standards/hate-speech"

_GROUNDS_TERMS = {"terms": 85, "both": 10, "illegal": 5}
_VIDEO_CONTENT = (("video",), ("video", "audio"), ("video", "text"))
_HATE_LAW = (
    ("DE", "DE: Strafgesetzbuch (StGB) § 130, incitement to hatred", "DE StGB § 130"),
    ("FR", "FR: Loi du 29 juillet 1881 sur la liberté de la presse, art. 24", "FR Loi 1881 art. 24"),
    ("ES", "ES: Código Penal, art. 510", "ES CP art. 510"),
    ("NL", "NL: Wetboek van Strafrecht, art. 137d", "NL SR art. 137d"),
    ("AT", "AT: Strafgesetzbuch (StGB) § 283, Verhetzung", "AT StGB § 283"),
    ("IT", "IT: Codice penale, art. 604-bis", "IT CP art. 604-bis"),
)

CHIRP = Platform(
    slug="demo-chirp",
    name="Chirp (demo)",
    host="chirp.example",
    weight=40,
    classes={
        "ordinary_user": 40,
        "head_of_state": 4,
        "legislator": 16,
        "candidate": 12,
        "government_official": 8,
        "party_account": 6,
        "journalist": 8,
        "other_public_figure": 6,
    },
    median_hours=5,
    rules=(
        Rule(
            id=CHIRP_CIVIC,
            category="negative_effects_on_civic_discourse_or_elections",
            weight=35,
            versions=(("2026-03", "2026-03-01"), ("2026-08", "2026-08-01")),
            keywords=("misinformation_disinformation", "data_falsification"),
            severity=(0.30, 0.35, 0.25, 0.10),
            violation=0.80,
            exemption=0.06,
            actions=CIVIC,
            grounds={"terms": 90, "both": 10},
            legal=(
                (
                    "FR",
                    "FR: Loi n° 2018-1202 relative à la lutte contre la manipulation de l'information, art. 1",
                    "FR Loi 2018-1202 art. 1",
                ),
                ("DE", "DE: Strafgesetzbuch (StGB) § 108a, deception of voters", "DE StGB § 108a"),
            ),
            exemption_types={"newsworthiness": 40, "public_interest": 30, "satire_or_counter_speech": 20, "other": 10},
            content=(("text",), ("text", "image"), ("text", "video")),
            claims=(
                "claims that postal ballots posted after Thursday will not be counted",
                "gives the wrong date for the regional election",
                'says "polls close at 6 pm" while they close at 8 pm & queues are still served',
                "claims that voting machines in two districts were <b>RIGGED</b>, without any source",
                "tells voters of one party to vote on the day after the election",
            ),
            peak="2026-09-27",
        ),
        Rule(
            id="hateful-conduct/dehumanisation",
            category="illegal_or_harmful_speech",
            weight=18,
            versions=(("2025-11", "2025-11-01"),),
            keywords=("hate_speech", "discrimination", "incitement_violence_hatred"),
            severity=(0.25, 0.40, 0.25, 0.10),
            violation=0.75,
            exemption=0.08,
            actions=SPEECH,
            grounds={"terms": 70, "both": 25, "illegal": 5},
            legal=_HATE_LAW,
            content=(("text",), ("text", "image")),
            claims=("compares a religious minority to vermin", "calls asylum seekers a disease to be cleaned out"),
        ),
        Rule(
            id="abuse/targeted-harassment",
            abuse="harassment",
            category="cyber_violence",
            weight=14,
            versions=(("2026-01", "2026-01-15"),),
            keywords=("cyber_harassment", "cyber_bullying_intimidation", "cyber_stalking"),
            severity=(0.35, 0.40, 0.20, 0.05),
            violation=0.70,
            exemption=0.05,
            actions=SPEECH,
            grounds=_GROUNDS_TERMS,
            legal=_HATE_LAW[:2],
            claims=("urges followers to flood a local councillor's inbox", "posts a reporter's daily route"),
        ),
        Rule(
            id="abuse/gendered-harassment",
            abuse="harassment",
            category="cyber_violence_against_women",
            weight=8,
            versions=(("2026-01", "2026-01-15"),),
            keywords=("cyber_harassment_against_women", "incitement_against_women", "female_gendered_disinformation"),
            severity=(0.20, 0.40, 0.30, 0.10),
            violation=0.75,
            exemption=0.04,
            actions=SPEECH,
            grounds=_GROUNDS_TERMS,
            legal=_HATE_LAW[:1],
            content=(("text",), ("text", "image"), ("image",)),
            claims=("spreads a sexualised fake image of a female minister",),
        ),
        Rule(
            id="platform-manipulation/scams",
            category="scams_and_fraud",
            weight=10,
            versions=(("2025-09", "2025-09-01"),),
            keywords=("phishing", "pyramid_schemes", "impersonation_account_hijacking"),
            severity=(0.20, 0.40, 0.30, 0.10),
            violation=0.90,
            exemption=0.02,
            actions=COMMERCE,
            grounds=_GROUNDS_TERMS,
            legal=(("DE", "DE: Strafgesetzbuch (StGB) § 263a, computer fraud", "DE StGB § 263a"),),
            exemption_types={"technical_correction": 50, "other": 50},
            content=(("text",), ("text", "app")),
            claims=("links to a fake donation page in the party's colours",),
        ),
        Rule(
            id="violent-speech/threats",
            abuse="threat",
            category="violence",
            weight=9,
            versions=(("2026-02", "2026-02-01"),),
            keywords=("incitement_violence_hatred", "coordinated_harm"),
            severity=(0.10, 0.30, 0.40, 0.20),
            violation=0.80,
            exemption=0.03,
            actions=SPEECH,
            grounds={"terms": 60, "both": 30, "illegal": 10},
            legal=_HATE_LAW[:2],
            claims=("says an election official 'should be hanged'",),
        ),
        Rule(
            id="privacy/private-information",
            category="data_protection_and_privacy_violations",
            weight=6,
            versions=(("2025-06", "2025-06-01"),),
            keywords=("biometric_data_breach", "missing_processing_ground", "right_to_be_forgotten"),
            severity=(0.30, 0.40, 0.25, 0.05),
            violation=0.70,
            exemption=0.10,
            actions=SPEECH,
            grounds={"terms": 60, "both": 30, "illegal": 10},
            legal=(("EU", "EU: Regulation (EU) 2016/679 (GDPR), art. 17, request for erasure", "EU GDPR art. 17"),),
            content=(("text",), ("image",)),
            claims=("publishes the home address of a polling station volunteer",),
        ),
    ),
)

TUBEVIEW = Platform(
    slug="demo-tubeview",
    name="TubeView (demo)",
    host="tubeview.example",
    weight=30,
    classes={
        "ordinary_user": 40,
        "head_of_state": 3,
        "legislator": 9,
        "candidate": 7,
        "government_official": 6,
        "party_account": 5,
        "journalist": 18,
        "other_public_figure": 12,
    },
    median_hours=10,
    rotates_at="2026-08-17T00:00:00Z",
    rules=(
        Rule(
            id="copyright/infringement",
            category="intellectual_property_infringements",
            weight=25,
            versions=(("2025-10", "2025-10-01"),),
            keywords=("copyright_infringement", "trademark_infringement"),
            severity=(0.45, 0.35, 0.15, 0.05),
            violation=0.85,
            exemption=0.10,
            actions=VIDEO,
            grounds={"terms": 40, "both": 50, "illegal": 10},
            legal=(
                (
                    "EU",
                    "EU: Directive (EU) 2019/790, art. 17; notice by the rightsholder",
                    "EU Directive (EU) 2019/790 art. 17",
                ),
            ),
            exemption_types={
                "educational_or_documentary": 40,
                "satire_or_counter_speech": 30,
                "public_interest": 20,
                "other": 10,
            },
            content=(("video",), ("video", "audio"), ("audio",)),
            claims=("uses a broadcaster's debate footage in full",),
        ),
        Rule(
            id="violent-content/graphic-violence",
            category="violence",
            weight=20,
            versions=(("2026-02", "2026-02-01"), ("2026-07", "2026-07-01")),
            keywords=("incitement_violence_hatred", "coordinated_harm"),
            severity=(0.15, 0.35, 0.35, 0.15),
            violation=0.75,
            exemption=0.15,
            actions=VIDEO,
            grounds=_GROUNDS_TERMS,
            legal=_HATE_LAW[:1],
            exemption_types={"educational_or_documentary": 45, "newsworthiness": 30, "public_interest": 25},
            content=(("video",), ("video", "audio")),
            claims=("shows unblurred footage of a street attack",),
        ),
        Rule(
            id="misinformation/medical",
            category="negative_effects_on_civic_discourse_or_elections",
            weight=15,
            versions=(("2025-12", "2025-12-01"),),
            keywords=("misinformation_disinformation", "risk_public_health"),
            severity=(0.30, 0.40, 0.25, 0.05),
            violation=0.70,
            exemption=0.08,
            actions=VIDEO,
            grounds={"terms": 100},
            exemption_types={"public_interest": 40, "satire_or_counter_speech": 30, "technical_correction": 30},
            content=(("video",), ("video", "synthetic_media")),
            claims=("claims a vaccine changes voters' DNA",),
        ),
        Rule(
            id="violent-extremism/terrorist-content",
            category="risk_for_public_security",
            weight=12,
            versions=(("2025-07", "2025-07-01"),),
            keywords=("terrorist_content", "illegal_organizations"),
            severity=(0.05, 0.20, 0.45, 0.30),
            violation=0.85,
            exemption=0.05,
            actions=VIDEO,
            grounds={"terms": 40, "both": 45, "illegal": 15},
            legal=(
                (
                    "EU",
                    "EU: Regulation (EU) 2021/784, art. 3, removal order (fictional order TCO-2026-0417)",
                    "EU Regulation (EU) 2021/784 art. 3",
                ),
            ),
            exemption_types={"newsworthiness": 50, "educational_or_documentary": 50},
            content=_VIDEO_CONTENT,
            claims=("re-uploads a banned group's recruitment video",),
        ),
        Rule(
            id="child-safety/minors",
            category="protection_of_minors",
            weight=10,
            versions=(("2026-04", "2026-04-01"),),
            keywords=("age_specific_restrictions_minors", "grooming_sexual_enticement_minors", "unsafe_challenges"),
            severity=(0.25, 0.35, 0.25, 0.15),
            violation=0.80,
            exemption=0.02,
            actions=VIDEO,
            grounds={"terms": 100},
            exemption_types={"educational_or_documentary": 60, "technical_correction": 40},
            content=_VIDEO_CONTENT,
            claims=("films pupils at a school gate without consent",),
        ),
        Rule(
            id="self-harm/dangerous-challenges",
            category="self_harm",
            weight=10,
            versions=(("2026-03", "2026-03-01"),),
            keywords=("unsafe_challenges", "self_mutilation", "content_promoting_eating_disorders", "suicide"),
            severity=(0.20, 0.35, 0.30, 0.15),
            violation=0.80,
            exemption=0.06,
            actions=VIDEO,
            grounds={"terms": 100},
            exemption_types={"educational_or_documentary": 70, "public_interest": 30},
            content=_VIDEO_CONTENT,
            claims=("promotes a breath-holding challenge",),
        ),
        Rule(
            id="animal-welfare/cruelty",
            category="animal_welfare",
            weight=8,
            versions=(("2025-05", "2025-05-01"),),
            keywords=("animal_harm", "unlawful_sale_animals"),
            severity=(0.25, 0.40, 0.25, 0.10),
            violation=0.80,
            exemption=0.08,
            actions=VIDEO,
            grounds=_GROUNDS_TERMS,
            legal=(("NL", "NL: Wet dieren, art. 2.1", "NL WD art. 2.1"),),
            exemption_types={"educational_or_documentary": 60, "newsworthiness": 40},
            content=_VIDEO_CONTENT,
            claims=("shows a dog being kicked at a campaign rally",),
        ),
    ),
)

FACESPACE = Platform(
    slug="demo-facespace",
    name="FaceSpace (demo)",
    host="facespace.example",
    weight=30,
    classes={
        "ordinary_user": 45,
        "head_of_state": 3,
        "legislator": 12,
        "candidate": 9,
        "government_official": 6,
        "party_account": 7,
        "journalist": 8,
        "other_public_figure": 10,
    },
    median_hours=20,
    rules=(
        Rule(
            id=FACESPACE_HATE,
            category="illegal_or_harmful_speech",
            weight=30,
            versions=(("2026-01", "2026-01-10"),),
            keywords=("hate_speech", "discrimination", "incitement_violence_hatred"),
            severity=(0.45, 0.35, 0.15, 0.05),
            violation=0.80,
            exemption=0.04,
            actions=SPEECH,
            grounds={"terms": 70, "both": 25, "illegal": 5},
            legal=_HATE_LAW,
            exemption_types={"satire_or_counter_speech": 50, "public_interest": 30, "newsworthiness": 20},
            content=(("text",), ("text", "image"), ("video",)),
            claims=("calls for Roma families to be driven out of the town", "says a minority 'breeds like rats'"),
        ),
        Rule(
            id="community-standards/election-integrity",
            category="negative_effects_on_civic_discourse_or_elections",
            weight=15,
            versions=(("2025-12", "2025-12-01"), ("2026-06", "2026-06-01")),
            keywords=("misinformation_disinformation", "coordinated_harm"),
            severity=(0.35, 0.40, 0.20, 0.05),
            violation=0.70,
            exemption=0.07,
            actions=SPEECH,
            grounds={"terms": 85, "both": 15},
            legal=(("FR", "FR: Code électoral, art. L. 97", "FR CE art. L97"),),
            content=(("text",), ("text", "image"), ("video",)),
            claims=("posts a doctored poll showing a candidate withdrawing",),
            peak="2026-09-27",
        ),
        Rule(
            id="marketplace/prohibited-goods",
            category="unsafe_and_prohibited_products",
            weight=15,
            versions=(("2026-02", "2026-02-01"),),
            keywords=("prohibited_products", "unsafe_products", "goods_services_not_permitted"),
            severity=(0.20, 0.40, 0.30, 0.10),
            violation=0.90,
            exemption=0.01,
            actions=COMMERCE,
            grounds={"terms": 60, "both": 30, "illegal": 10},
            legal=(
                ("EU", "EU: Regulation (EU) 2023/988 (General Product Safety Regulation), art. 22", "EU GPSR art. 22"),
            ),
            exemption_types={"technical_correction": 100},
            content=(("product",), ("product", "image")),
            claims=("sells unlabelled campaign fireworks",),
        ),
        Rule(
            id="marketplace/consumer-information",
            category="consumer_information",
            weight=12,
            versions=(("2026-02", "2026-02-01"),),
            keywords=(
                "misleading_info_consumer_rights",
                "insufficient_information_on_traders",
                "noncompliance_pricing",
            ),
            severity=(0.50, 0.35, 0.15, 0.00),
            violation=0.85,
            exemption=0.03,
            actions=COMMERCE,
            grounds={"terms": 50, "both": 40, "illegal": 10},
            legal=(
                (
                    "EU",
                    "EU: Directive 2005/29/EC (unfair commercial practices), art. 6",
                    "EU Directive 2005/29/EC art. 6",
                ),
            ),
            exemption_types={"technical_correction": 80, "other": 20},
            content=(("product",), ("product", "text")),
            claims=("sells party merchandise without a trader address",),
        ),
        Rule(
            id="account-integrity/impersonation",
            category="other_violation_tc",
            weight=13,
            versions=(("2025-08", "2025-08-01"),),
            keywords=("impersonation_account_hijacking", "inauthentic_accounts"),
            severity=(0.25, 0.40, 0.30, 0.05),
            violation=0.85,
            exemption=0.05,
            actions=COMMERCE,
            grounds=_GROUNDS_TERMS,
            legal=(("FR", "FR: Code pénal, art. 226-4-1, usurpation of identity", "FR CP art. 226-4-1"),),
            exemption_types={"satire_or_counter_speech": 70, "other": 30},
            content=(("text",), ("image",), ("other",)),
            claims=("runs a parody page without the parody label",),
        ),
        Rule(
            id="legal/unspecified-notice",
            category="not_specified_notice",
            weight=15,
            versions=(("2025-01", "2025-01-01"),),
            keywords=("violation_national_law", "violation_eu_law", "defamation", "other"),
            severity=(0.30, 0.40, 0.25, 0.05),
            violation=0.65,
            exemption=0.10,
            actions=SPEECH,
            grounds={"illegal": 60, "both": 40},
            legal=(
                (
                    "DE",
                    "DE: order of the Landgericht Hamburg, case 324 O 123/26 (fictional), under BGB §§ 823, 1004",
                    "DE BGB §§ 823, 1004",
                ),
                (
                    "PL",
                    "PL: Kodeks karny, art. 212 (defamation); prosecutor's request (fictional ref. PR 1 Ds 77.2026)",
                    "PL KK art. 212",
                ),
                (
                    "IE",
                    "IE: Defamation Act 2009, s. 6; order of the High Court (fictional record 2026/1234P)",
                    "IE DA 2009 s. 6",
                ),
                (
                    "AT",
                    "AT: Mediengesetz § 6; request of the public prosecutor (fictional ref. 12 St 34/26)",
                    "AT MedienG § 6",
                ),
            ),
            exemption_types={"public_interest": 50, "newsworthiness": 30, "other": 20},
            content=(("text",), ("text", "image"), ("image",)),
            claims=("repeats an allegation a court has ordered taken down",),
        ),
    ),
)

PLATFORMS = (CHIRP, TUBEVIEW, FACESPACE)


@dataclass(frozen=True)
class Figure:
    """A fictional public account: one person or body, present on every platform."""

    account_class: str
    name: str
    office: str
    jurisdiction: str
    language: str
    basis: str
    followers: str  # follower bucket
    qid: str | None = None


def _f(cls: str, name: str, office: str, where: str, lang: str, basis: str, followers: str) -> Figure:
    return Figure(cls, name, office, where, lang, basis, followers)


FIGURES = (
    Figure("head_of_state", "Aurelia Exemplaria", "President of the Republic", "PT", "pt", "office_record", ">1M",
           "Q4115189"),  # Wikidata's sandbox item, not a person
    _f("head_of_state", "Magdalena Beispielhofer", "Federal President", "AT", "de", "office_record", ">1M"),
    _f("head_of_state", "Eero Esimerkki", "President of the Republic", "FI", "fi", "office_record", "100k-1M"),
    _f("head_of_state", "Ioana Exemplu", "President of the Republic", "RO", "ro", "office_record", ">1M"),
    _f("legislator", "Jonas Beispielmann", "Member of the Bundestag", "DE", "de", "office_record", "100k-1M"),
    _f("legislator", "Lena Esempio", "Member of the Chamber of Deputies", "IT", "it", "office_record", "10k-100k"),
    _f("legislator", "Pieter Voorbeeld", "Member of the House of Representatives", "NL", "nl", "office_record",
       "10k-100k"),
    _f("legislator", "Zofia Przykładowska", "Member of the Sejm", "PL", "pl", "office_record", "100k-1M"),
    _f("legislator", "Camille Exemplaire", "Member of the National Assembly", "FR", "fr", "office_record", ">1M"),
    _f("legislator", "Ana Ejemplar", "Member of the Congress of Deputies", "ES", "es", "platform_list", "10k-100k"),
    _f("legislator", "Sven Exempelsson", "Member of the Riksdag", "SE", "sv", "office_record", "1k-10k"),
    _f("legislator", "Márta Példás", "Member of the National Assembly", "HU", "hu", "office_record", "10k-100k"),
    _f("legislator", "Tomas Pavyzdys", "Member of the Seimas", "LT", "lt", "self_declared", "1k-10k"),
    _f("legislator", "Eleni Paradeigma", "Member of the European Parliament", "EU", "el", "office_record",
       "100k-1M"),
    _f("candidate", "Erika Mustermann", "Candidate for the Bundestag", "DE", "de", "platform_list", "10k-100k"),
    _f("candidate", "Jean Dupont-Exemple", "Candidate for mayor of a fictional town", "FR", "fr", "self_declared",
       "1k-10k"),
    _f("candidate", "Mario Rossi-Esempio", "Candidate for the regional council", "IT", "it", "platform_list",
       "10k-100k"),
    _f("candidate", "Jan Jansen-Voorbeeld", "Candidate for the municipal council", "NL", "nl", "self_declared",
       "<1k"),
    _f("candidate", "Jan Kowalski-Przykład", "Candidate for the Senate", "PL", "pl", "office_record", "10k-100k"),
    _f("candidate", "Juan Pérez Ejemplo", "Candidate for the Senate", "ES", "es", "platform_list", "100k-1M"),
    _f("candidate", "Jan Novák-Příklad", "Candidate for the Chamber of Deputies", "CZ", "cs", "self_declared",
       "1k-10k"),
    _f("candidate", "Matti Meikäläinen", "Candidate for the European Parliament", "FI", "fi", "platform_list",
       "10k-100k"),
    _f("government_official", "Sophie Exemplet", "Minister for Digital Affairs", "BE", "fr", "office_record",
       "100k-1M"),
    _f("government_official", "Luka Zgled", "Minister of Health", "SI", "sl", "office_record", "10k-100k"),
    _f("government_official", "Ivana Primjerić", "Government spokesperson", "HR", "hr", "office_record", "10k-100k"),
    _f("government_official", "Aino Näide", "State Secretary for the Interior", "EE", "et", "office_record",
       "1k-10k"),
    _f("government_official", "Georg Mustervogt", "Federal Returning Officer", "DE", "de", "office_record",
       "10k-100k"),
    _f("government_official", "Inês Exemplo", "Minister of Justice", "PT", "pt", "office_record", "100k-1M"),
    _f("party_account", "Example Progress Party", "Political party, official account", "DE", "de",
       "platform_label", "100k-1M"),
    _f("party_account", "Partij voor Voorbeeldige Democratie", "Political party, official account", "NL", "nl",
       "platform_label", "10k-100k"),
    _f("party_account", "Unione Esempio", "Political party, official account", "IT", "it", "platform_label",
       "100k-1M"),
    _f("party_account", "Rassemblement Exemplaire", "Political party, official account", "FR", "fr",
       "platform_label", ">1M"),
    _f("party_account", "Alianza Ejemplar", "Political party, official account", "ES", "es", "platform_list",
       "10k-100k"),
    _f("party_account", "European Example Greens", "European political party, official account", "EU", "en",
       "platform_label", "10k-100k"),
    _f("journalist", "Ruth Exempla", "Investigative reporter, The Example Gazette", "IE", "en", "platform_label",
       "10k-100k"),
    _f("journalist", "Daniel Sample", "Political editor, Example Broadcasting", "DE", "en", "self_declared",
       "100k-1M"),
    _f("journalist", "Olga Primerová", "Correspondent, Příklad Daily", "CZ", "cs", "platform_label", "10k-100k"),
    _f("journalist", "Hugo Voorbeeldt", "Video journalist, Voorbeeld Nieuws", "NL", "nl", "self_declared",
       "1k-10k"),
    _f("journalist", "Sara Ejemplo Ruiz", "Fact-checker, Ejemplo Verifica", "ES", "es", "platform_label",
       "10k-100k"),
    _f("journalist", "Tobias Specimen", "Freelance war reporter", "AT", "de", "self_declared", "10k-100k"),
    _f("journalist", "Leila Exemplar", "Host, The Example Hour", "FR", "fr", "platform_label", ">1M"),
    _f("journalist", "Marco Campione", "Editor, Campione Quotidiano", "IT", "it", "platform_label", "10k-100k"),
    _f("other_public_figure", "Vera Influencia", "Lifestyle creator", "ES", "es", "platform_label", ">1M"),
    _f("other_public_figure", "Otto Specimen", "Football player", "DE", "de", "platform_label", ">1M"),
    _f("other_public_figure", "Bea Muster", "Singer", "AT", "de", "platform_label", "100k-1M"),
    _f("other_public_figure", "Luca Esempietto", "Television chef", "IT", "it", "platform_label", "100k-1M"),
    _f("other_public_figure", "Iris Sample", "Physician and health commentator", "IE", "en", "self_declared",
       "10k-100k"),
    _f("other_public_figure", "Rex Examplestone", "Actor", "GB", "en", "platform_label", ">1M"),
)  # fmt: skip

POLITICAL = frozenset(POLITICAL_CLASSES)
#: Languages of ordinary users' content, most common first.
USER_LANGUAGES = {"en": 30, "de": 15, "fr": 12, "es": 10, "it": 8, "nl": 6, "pl": 6, "pt": 4, "sv": 3, "ro": 3,
                  "cs": 2, "hu": 1}  # fmt: skip
#: Ordinary users' follower buckets (top-coded at 10k+).
USER_FOLLOWERS = {"<1k": 70, "1k-10k": 25, "10k+": 5}
