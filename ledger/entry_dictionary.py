"""The preset dictionary of entry storage format 1 (ledger/entry_codec.py).

Frozen: every entry stored in format 1 was compressed against exactly
these bytes, and deflate cannot read it back with any others (RFC 1951's
back-references would point into a different window). A new vocabulary,
however the record schema grows, is a new format with a dictionary of its
own; :data:`DICTIONARY_SHA256` pins this one, and the codec refuses to
load if it changes.

Made once (December 2026) from record schema version 1
(docs/schema/record-v1.schema.json): its enumerated values, then its
member names as ``"name":``, then the frame every platform entry shares
(ledger/records/entries.py). Deflate finds a match at a shorter distance
more cheaply, so the most frequent strings come last (RFC 1950 section
2.2, FDICT; zlib's ``deflateSetDictionary``). Only the schema's own
vocabulary, no example's free text: the compression measured on the
benchmark's four templates is then what any platform's records get.
"""

from __future__ import annotations

import hashlib

#: Two-letter codes (ISO 3166-1 countries, ISO 639-1 languages), JSON strings.
_CODES = """
low <1k >1M app AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN
BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO
DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB
LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA
SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT
TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW EU aa ab ae af ak am an ar as
av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en eo es et eu
fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja
jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms
mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se
sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve
vi vo wa wo xh yi yo za zh zu
"""

#: The other enumerated values of the schema, JSON strings.
_VALUES = """
decision appeal amendment coverage terms illegal both animal_welfare consumer_information
cyber_violence cyber_violence_against_women data_protection_and_privacy_violations
illegal_or_harmful_speech intellectual_property_infringements
negative_effects_on_civic_discourse_or_elections not_specified_notice other_violation_tc
protection_of_minors risk_for_public_security scams_and_fraud self_harm
unsafe_and_prohibited_products violence adult_sexual_material age_specific_restrictions
age_specific_restrictions_minors animal_harm biometric_data_breach bullying_against_girls
child_sexual_abuse_material child_sexual_abuse_material_deepfake content_promoting_eating_disorders
coordinated_harm copyright_infringement cyber_bullying_intimidation cyber_harassment
cyber_harassment_against_women cyber_incitement cyber_stalking cyber_stalking_against_women
data_falsification defamation design_infringement discrimination female_gendered_disinformation
geographic_indications_infringement geographical_requirements goods_services_not_permitted
grooming_sexual_enticement_minors hate_speech hidden_advertisement human_exploitation
human_trafficking illegal_organizations impersonation_account_hijacking inauthentic_accounts
inauthentic_listings inauthentic_user_reviews incitement_against_women incitement_violence_hatred
insufficient_information_on_traders language_requirements misinformation_disinformation
misleading_info_consumer_rights misleading_info_goods_services missing_processing_ground
non_consensual_image_sharing non_consensual_image_sharing_against_women
non_consensual_material_deepfake non_consensual_material_deepfake_against_women
noncompliance_pricing nudity patent_infringement phishing prohibited_products pyramid_schemes
right_to_be_forgotten risk_environmental_damage risk_public_health self_mutilation stalking suicide
terrorist_content trade_secret_infringement trademark_infringement trafficking_women_girls
unlawful_sale_animals unsafe_challenges unsafe_products violation_eu_law violation_national_law
other medium high critical none label interstitial reduce_reach age_restrict restrict_interaction
geo_block demonetize feature_limit remove_content temporary_suspension permanent_ban newsworthiness
public_interest satire_or_counter_speech educational_or_documentary technical_correction standard
secondary_high_profile policy_escalation legal visible hidden not_applicable automated user_report
trusted_flagger government_request court_order internal_staff media_or_public_inquiry fully
partially request order head_of_state legislator candidate government_official party_account
journalist other_public_figure election_worker ordinary_user group harassment threat incitement
target_self public_account government_body office_record platform_label self_declared platform_list
1k-10k 10k-100k 100k-1M 10k+ audio image product synthetic_media text video internal
out_of_court_body oversight_board court pending upheld reversed modified data_error
late_classification policy_reinterpretation duplicate legal_order all_decisions listed_classes
"""

#: Member names of the schema's objects, as ``"name":``.
_NAMES = """
abuse account action action_ends_at age_restrict applied applied_at automated_decision
automated_detection candidate category channel class class_basis content corrected counts criterion
decided_at decision_ground demonetize description detection_source display_name dsa_sor_uuid
exempted exemption feature_limit filed_at flagged_at follower_bucket geo_block government_official
handle head_of_state id inclusion interim_state interstitial journalist jurisdiction keywords label
language legal_reference legislator new_action none not_exempted office ordinary_user
other_public_figure outcome party_account period permanent_ban platform policy posted_at
public_subject reason record_id reduce_reach ref refs remove_content reporter_class
restrict_interaction review_path rule schema_version severity state_involvement statement
subject_key submitted_at target temporary_suspension territorial_scope type types url version
violation_found wikidata_qid
"""

#: The frame of a platform entry and the members every record carries.
_FRAME = (
    '{"logged_at":"2026-',
    "T",
    ':00.000Z","record":{',
    '"schema_version":1,',
    '"territorial_scope":["GLOBAL"],"type":"decision","violation_found":true},',
    '"signature":{"alg":"ed25519","key_id":"',
    '","value":"',
    '=="}}',
)


def _build() -> bytes:
    codes = '"' + '","'.join(_CODES.split()) + '"'
    values = "".join(f'"{v}"' for v in _VALUES.split())
    names = "".join(f'"{n}":' for n in _NAMES.split())
    return (codes + values + names + "".join(_FRAME)).encode()


DICTIONARY = _build()
DICTIONARY_SHA256 = "9b24cecaa951ba62c3e0469a42e80f21fe0e1aed0f263cf07913654a094a8845"
if hashlib.sha256(DICTIONARY).hexdigest() != DICTIONARY_SHA256:
    raise AssertionError("entry storage format 1's dictionary changed: stored entries would no longer decode")
