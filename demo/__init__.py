"""A synthetic demo ledger: ``make demo`` (``python -m demo``).

Three fictional platforms, ``demo-chirp``, ``demo-tubeview`` and
``demo-facespace`` (the pages show a "synthetic demo data" banner for any
``demo-`` platform), record decisions on fictional politicians, candidates,
officials, parties, journalists, other public figures and nameless
ordinary users from 2026-05-01 to 2026-11-20, with appeals (every outcome,
pending included, some pending appeals later resolved) and amendments
(every reason). Every DSA category, account class, action, exemption type,
review path, detection source and automated_decision value occurs.
``demo-tubeview`` rotates its signing key for records submitted from
2026-08-17. Everything follows from ``--seed``: the same seed and
``--records`` give byte-identical signed records.

Modules: :mod:`demo.cast` (platforms, rules, people), :mod:`demo.design`
(which decisions exist and how they came out), :mod:`demo.records` (the
record fields), :mod:`demo.generate` (appeals, amendments, IDs, validation,
signatures), :mod:`demo.operator` and ``__main__`` (registration and
submission).

Planted disparities
-------------------
The evenness statistics (method version 1) should find these, and nothing
else. Every other outcome is drawn from the same distributions for every
account class, and dealt so that every class and political_any, overall
and at each severity, get each outcome within about 1.5 cases of the
shared rates (:mod:`demo.design`): chance cannot add a disparity.
Figures in brackets are those of the default seed and 3,000 records
(2,550 decisions); "political" is ``political_any`` (head of state,
legislator, candidate, government official, party account).

1. **Exemptions, demo-chirp, rule civic-integrity/election-misinformation.**
   Among violations found, political accounts are exempted with
   probability 0.36 in every severity, everyone else (ordinary users,
   journalists, other public figures) with 0.06: six times more often at
   equal severity. 85% of the political exemptions are newsworthiness,
   against 40% of the others. [Political 47 of 132 violations exempted
   (35.6%), ordinary users 7 of 114 (6.1%); newsworthiness 40 of 132
   (30.3%) against 3 of 114 (2.6%).] Each political class on its own
   shows it too (head of state: only 12 violations). Exempted content
   gets no adverse action, so in the same cell the adverse-action rate
   is lower for political accounts as a consequence [30 of 132, 22.7%,
   against 37 of 114, 32.5%]: the same plant, not a second one. At 3,000
   records it is too small to be flagged; from about 6,000 it is (with
   the action distribution), as it should be.

2. **Time to decision, demo-tubeview, every rule.** Journalists' cases take
   three times as long from flag to decision: log-normal with median 30 h
   instead of 10 h (log spread 1.1 for both). [Median 28.7 h over 139
   journalist decisions against 10.0 h over 307 ordinary users'; the rules
   with at least 20 journalist decisions, as the per-rule time tests need,
   are copyright/infringement (35), violent-content/graphic-violence (28)
   and misinformation/medical (21).]

3. **Simpson's paradox, demo-facespace, rule community-standards/hate-speech.**
   Political accounts' cases are more severe (severity mix low/medium/
   high/critical 10/20/45/25% against 45/35/15/5% for everyone else), and
   adverse actions grow with severity, but *within each severity* the
   adverse-action rate is the same for every class (expected 19%, 48%,
   82%, 96%). So the crude rates differ [political 49 of 68 violations,
   72.1%, against ordinary users' 35 of 83, 42.2%] while the comparison
   stratified by severity does not. The crude action distribution differs
   for the same reason; stratified by severity it does not.

4. **Protection (method version 2), demo-chirp, rule violent-speech/threats.**
   Threats aimed at election workers are among the slower cases of their
   severity: the slower half of each severity's threats is aimed at
   election workers with probability 0.5, the faster half with 0.08
   (:mod:`demo.protection`); every other target and reporter class is dealt
   evenly over fast and slow cases. [Median 8.7 h over 26 threats aimed at
   election workers against 3.7 h over 38 aimed at ordinary users;
   within-severity probability 0.78 that an election worker's threat took
   longer.] The severity mix of the two is the same, so it is no Simpson's
   paradox: the comparison stratified by severity finds it. Times are not
   changed, only whom each case is marked as aimed at, so every method
   version 1 figure is that of the demo without the protection fields.
   Election workers appear as targets only, not as accounts.

Checked against ``ledger/evenness*`` (method version 1) as it stood when
this was written: at the default seed and 3,000 records, the flagged
comparisons are exactly plant 1 (demo-chirp's civic-integrity rule: each
political class but head of state, political_any, and the platform
summary) and plant 2 (the three tubeview rules above); plant 3 is not
flagged. With fewer records fewer comparisons reach significance (at
1,500 only plant 1's political_any and platform summary). Method version
2's protection section flags exactly plant 4 at the default seed and size.

Process fields that no method-v1 metric reads (review path, interim state,
detection source, automated decision) do depend on the class, as on real
platforms: public accounts mostly go to secondary high-profile review and
are decided by people. The time to decision does not depend on them.
"""
