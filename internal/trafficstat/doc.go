// Package trafficstat holds the statistics behind Umbra's observer tests
// (issue 10): what a node, an exit or a link observer can tell from recorded
// traffic. Pure Go, textbook formulas, each cited where it is implemented.
//
// # What each test means
//
// KSTwoSample (two-sample Kolmogorov–Smirnov) asks whether two samples —
// say the inter-arrival times of a client's requests with 0 and with 50
// contacts — come from one continuous distribution. p > 0.01 means the test
// found no difference at the 1% level; it does not prove there is none. Its
// power grows with √(n·m/(n+m)): with 300 gaps per trace it rejects at the 1%
// level only when the CDFs differ by about 0.13 somewhere, not a subtle
// difference. The p-value is
// asymptotic (Stephens' correction makes it good from about 4 effective
// samples) and conservative when times are rounded into ties.
//
// SameRateP (conditional binomial test) asks whether two series of
// per-minute request counts have one Poisson rate; OverdispersionP (Fisher's
// index of dispersion, upper tail only) asks whether counts vary more from
// minute to minute than one Poisson rate allows. Traffic more regular than
// Poisson — a jittered cadence — passes both: regularity is not a leak of
// contacts or activity. PoissonCDF, PoissonQuantile and PoissonBounds give
// the same bounds for a single count ("within Poisson bounds").
// CompareTraces runs all three on two traces of one observer and
// Indistinguishable reports every test that rejects.
//
// AdjustedRandIndex (Hubert & Arabie 1985) scores a clustering against the
// truth: 1 is perfect, 0 is chance, negative is worse than chance. An
// attacker "links mailboxes no better than chance" when its ARI is about 0;
// with 200 mailboxes in 20 clients a random guess has a spread of about
// 0.01, so a bound of 0.05 leaves room for noise but not for a real link.
//
// Attacker is a linking attacker that knows the number of clients (the
// strongest version). From Observations (mailbox, time, node, size) it
// builds a similarity per pair of mailboxes from
//
//   - timing: how much more often than chance their accesses fall within a
//     window Δ of each other (the old lock-step long-polls);
//   - handoff: whether one mailbox is first read one typical gap after the
//     other is last read (a rotated inbox read on an exact cadence);
//   - size and node: cosine similarity of the histograms of sizes and of
//     the nodes that saw them;
//
// then clusters them by agglomeration to k clusters. Attackers lists
// variants (each feature alone, two linkages) and BestAttack reports the one
// that links best. The tests show it links lock-step mailboxes and a naive
// exact-cadence rotation with ARI ≈ 1, per-client sizes with ARI ≈ 1, and
// scores ≈ 0 when each client reads one rotating inbox on an independent
// Poisson or jittered schedule.
//
// # Limits
//
// A passing observer test bounds these attacks, not every attack. The
// attacker does not model a global observer correlating a client's link with
// the exits, nor learn weights, nor use long-range patterns such as the
// negative correlation between mailboxes of one client when it reads only one
// of them per epoch. Its clustering costs O(m³) for m mailboxes (a few
// seconds for 1000). Every test here is seeded (math/rand/v2) and so
// deterministic; a test asserting p > 0.01 on fresh randomness fails about 1%
// of the time when there is no difference, so callers should seed too.
//
// ExpInterarrivals, PoissonArrivals and JitteredArrivals generate traffic
// for tests from an injected *rand.Rand.
package trafficstat
