//! The attacker's classifier (smartcore's random forest) under grouped cross-validation: all
//! windows of a clip fall in the same fold, so the forest never scores a clip it trained on.

use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

/// Rows to classify: features, class label and group (clip id).
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub x: Vec<Vec<f64>>,
    pub y: Vec<u32>,
    pub group: Vec<usize>,
    pub n_classes: usize,
}

#[derive(Clone, Debug)]
pub struct CvResult {
    /// `confusion[true][predicted]`, counts of rows.
    pub confusion: Vec<Vec<u32>>,
    pub rows: usize,
    /// Row (window) accuracy.
    pub accuracy: f64,
    /// Accuracy after a majority vote over each clip's rows.
    pub clip_accuracy: f64,
    pub clips: usize,
    pub folds: usize,
}

/// Fold of a group: groups are numbered per class in [`crate::Run`], so `fold = index within
/// class % k` keeps every fold stratified and every clip in one fold.
pub fn fold_of(index_within_class: usize, folds: usize) -> usize {
    index_within_class % folds
}

/// Grouped k-fold cross-validation. `fold[g]` gives the fold of group `g`.
pub fn cross_validate(
    data: &Dataset,
    fold: &dyn Fn(usize) -> usize,
    folds: usize,
    seed: u64,
) -> Result<CvResult, String> {
    let k = data.n_classes;
    let mut confusion = vec![vec![0u32; k]; k];
    let mut predicted = vec![u32::MAX; data.y.len()];
    for f in 0..folds {
        let (train, test): (Vec<usize>, Vec<usize>) =
            (0..data.y.len()).partition(|&i| fold(data.group[i]) != f);
        if test.is_empty() {
            continue;
        }
        if train.is_empty() {
            return Err(format!("fold {f} leaves nothing to train on"));
        }
        let ytr: Vec<u32> = train.iter().map(|&i| data.y[i]).collect();
        // The attacker drops features that never vary in the training data (they carry no
        // information); smartcore's forest also stops splitting a node whose sampled
        // features are all constant, so leaving them in only weakens the attack.
        let width = data.x[train[0]].len();
        let varying: Vec<usize> = (0..width)
            .filter(|&c| {
                train
                    .iter()
                    .any(|&i| data.x[i][c].to_bits() != data.x[train[0]][c].to_bits())
            })
            .collect();
        let pred: Vec<u32> = if varying.is_empty() {
            // Nothing varies: every model is a constant function. Predict the training
            // majority (ties to the lowest class), which is what a fitted forest would do.
            let mut counts = vec![0usize; k];
            for &y in &ytr {
                counts[y as usize] += 1;
            }
            let majority = (0..k)
                .max_by_key(|&c| (counts[c], std::cmp::Reverse(c)))
                .unwrap_or(0);
            vec![majority as u32; test.len()]
        } else {
            let pick = |idx: &[usize]| -> Result<DenseMatrix<f64>, String> {
                let rows: Vec<Vec<f64>> = idx
                    .iter()
                    .map(|&i| varying.iter().map(|&c| data.x[i][c]).collect())
                    .collect();
                DenseMatrix::from_2d_vec(&rows).map_err(|e| e.to_string())
            };
            let params = RandomForestClassifierParameters::default()
                .with_n_trees(60)
                .with_max_depth(12)
                .with_min_samples_leaf(2)
                .with_seed(seed.wrapping_add(f as u64));
            let model = RandomForestClassifier::fit(&pick(&train)?, &ytr, params)
                .map_err(|e| e.to_string())?;
            model.predict(&pick(&test)?).map_err(|e| e.to_string())?
        };
        for (&i, &p) in test.iter().zip(&pred) {
            predicted[i] = p;
            confusion[data.y[i] as usize][p as usize] += 1;
        }
    }
    let rows = data.y.len();
    let correct = (0..rows).filter(|&i| predicted[i] == data.y[i]).count();

    // Majority vote per clip (ties go to the lowest class index: deterministic).
    let mut groups: Vec<usize> = data.group.clone();
    groups.sort_unstable();
    groups.dedup();
    let mut clip_correct = 0;
    for &g in &groups {
        let mut votes = vec![0u32; k];
        let mut truth = 0;
        for i in (0..rows).filter(|&i| data.group[i] == g) {
            if (predicted[i] as usize) < k {
                votes[predicted[i] as usize] += 1;
            }
            truth = data.y[i] as usize;
        }
        let best = (0..k)
            .max_by_key(|&c| (votes[c], std::cmp::Reverse(c)))
            .unwrap_or(0);
        clip_correct += usize::from(best == truth);
    }
    Ok(CvResult {
        confusion,
        rows,
        accuracy: correct as f64 / rows.max(1) as f64,
        clip_accuracy: clip_correct as f64 / groups.len().max(1) as f64,
        clips: groups.len(),
        folds,
    })
}

/// The two-sided `level` interval of the accuracy of a guesser right with probability `p`, over
/// `n` independent trials: the `(1-level)/2` and `(1+level)/2` quantiles of Binomial(n, p) / n.
/// Computed from the exact probability mass function (a running product, fine for n in the
/// tens of thousands).
pub fn binomial_interval(n: usize, p: f64, level: f64) -> (f64, f64) {
    let tail = (1.0 - level) / 2.0;
    // pmf(0) = (1-p)^n, pmf(x+1) = pmf(x) * (n-x)/(x+1) * p/(1-p); in logs to avoid underflow.
    let mut logpmf = Vec::with_capacity(n + 1);
    let mut lp = n as f64 * (1.0 - p).ln();
    for x in 0..=n {
        logpmf.push(lp);
        lp += ((n - x) as f64).ln() - ((x + 1) as f64).ln() + p.ln() - (1.0 - p).ln();
    }
    let mut cdf = 0.0;
    let (mut lo, mut hi) = (0usize, n);
    let mut lo_set = false;
    for (x, l) in logpmf.iter().enumerate() {
        cdf += l.exp();
        if !lo_set && cdf > tail {
            lo = x;
            lo_set = true;
        }
        if cdf >= 1.0 - tail {
            hi = x;
            break;
        }
    }
    (lo as f64 / n.max(1) as f64, hi as f64 / n.max(1) as f64)
}

/// Two-sample Kolmogorov-Smirnov test: the statistic D = sup |F1 - F2| over the pooled
/// values, and the asymptotic p-value Q_KS(sqrt(ne) * D * (1 + 0.12/sqrt ne + 0.11/ne)) with
/// ne = n1 n2 / (n1 + n2) (Stephens' small-sample correction, as in Numerical Recipes).
/// Q_KS(l) = 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 l^2). With ties (discrete timing values) the
/// test is conservative: it reports differences less readily, never more.
/// Written here because the maintained option, statrs 0.19.1's `ks_twosample`, loops forever
/// when D = 0 (its series never gets a small term), which is exactly HardMute's result; it also
/// needs Rust 1.89.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> KsResult {
    if a.is_empty() || b.is_empty() {
        return KsResult { d: 0.0, p: 1.0 };
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let v = a[i].min(b[j]);
        // Step past every copy of v in both samples before comparing the ECDFs.
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        d = d.max((i as f64 / n1 - j as f64 / n2).abs());
    }
    let ne = n1 * n2 / (n1 + n2);
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    KsResult { d, p: q_ks(lambda) }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KsResult {
    pub d: f64,
    pub p: f64,
}

fn q_ks(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for j in 1..=200 {
        let term = (-2.0 * (j as f64 * lambda).powi(2)).exp();
        sum += sign * term;
        if term < 1e-12 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Does buffer timing depend on the activity? A two-sample KS statistic for every pair of
/// classes, the largest one as the family statistic, calibrated by permuting the class labels
/// among clips (`permutations` times; ChaCha8 from `seed`).
///
/// Why permute clips rather than trust the KS p-values: intervals within a clip are not
/// independent (a load burst on the machine delays many consecutive buffers), so the asymptotic
/// KS p-value on pooled intervals is far too small on a real, busy machine. Clips are the
/// independent units (they are played in shuffled order), so shuffling their labels gives the
/// null distribution of the statistic with no independence assumption within a clip. Taking
/// the maximum over pairs controls the family-wise error without Bonferroni.
///
/// `clips[i] = (class, values)`. ECDFs are compared at up to 512 points (every distinct value,
/// or quantiles of the pooled values when there are more), so D here is the exact KS D for
/// discrete data and a close lower bound otherwise. Returns (D_max observed, p-value).
pub fn clip_permutation_test(
    clips: &[(usize, Vec<f64>)],
    n_classes: usize,
    permutations: usize,
    seed: u64,
) -> (f64, f64) {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut pooled: Vec<f64> = clips.iter().flat_map(|c| c.1.iter().copied()).collect();
    if pooled.is_empty() {
        return (0.0, 1.0);
    }
    pooled.sort_by(f64::total_cmp);
    let mut edges = pooled.clone();
    edges.dedup();
    if edges.len() > 512 {
        edges = (0..512)
            .map(|k| pooled[(k * (pooled.len() - 1)) / 511])
            .collect();
        edges.dedup();
    }
    // cum[c][k]: values of clip c <= edges[k].
    let cum: Vec<Vec<u32>> = clips
        .iter()
        .map(|(_, v)| {
            let mut v = v.clone();
            v.sort_by(f64::total_cmp);
            let mut i = 0;
            edges
                .iter()
                .map(|e| {
                    while i < v.len() && v[i] <= *e {
                        i += 1;
                    }
                    i as u32
                })
                .collect()
        })
        .collect();
    let statistic = |labels: &[usize]| -> f64 {
        let m = edges.len();
        let mut sums = vec![vec![0u64; m]; n_classes];
        let mut totals = vec![0u64; n_classes];
        for (c, &l) in labels.iter().enumerate() {
            totals[l] += clips[c].1.len() as u64;
            for (s, &x) in sums[l].iter_mut().zip(&cum[c]) {
                *s += x as u64;
            }
        }
        let mut d = 0.0f64;
        for a in 0..n_classes {
            for b in a + 1..n_classes {
                if totals[a] == 0 || totals[b] == 0 {
                    continue;
                }
                let (na, nb) = (totals[a] as f64, totals[b] as f64);
                for (&sa, &sb) in sums[a].iter().zip(&sums[b]) {
                    d = d.max((sa as f64 / na - sb as f64 / nb).abs());
                }
            }
        }
        d
    };
    let mut labels: Vec<usize> = clips.iter().map(|c| c.0).collect();
    let observed = statistic(&labels);
    if observed == 0.0 {
        return (0.0, 1.0);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut at_least = 0usize;
    for _ in 0..permutations {
        labels.shuffle(&mut rng);
        if statistic(&labels) >= observed - 1e-12 {
            at_least += 1;
        }
    }
    (observed, (1 + at_least) as f64 / (1 + permutations) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn binomial_interval_matches_known_quantiles() {
        // Binomial(100, 0.5): the 2.5% and 97.5% quantiles are 40 and 60.
        let (lo, hi) = binomial_interval(100, 0.5, 0.95);
        assert_eq!((lo, hi), (0.40, 0.60));
        let (lo, hi) = binomial_interval(56, 1.0 / 7.0, 0.99);
        assert!(lo < 1.0 / 7.0 && hi > 1.0 / 7.0 && hi < 0.35, "{lo} {hi}");
    }

    #[test]
    fn ks_detects_a_shift_and_accepts_equal_distributions() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let a: Vec<f64> = (0..500).map(|_| rng.random::<f64>()).collect();
        let b: Vec<f64> = (0..500).map(|_| rng.random::<f64>()).collect();
        let c: Vec<f64> = (0..500).map(|_| rng.random::<f64>() + 0.2).collect();
        assert!(ks_two_sample(&a, &b).p > 0.01);
        let shifted = ks_two_sample(&a, &c);
        assert!(shifted.p < 1e-6 && shifted.d > 0.1, "{shifted:?}");
        let same = ks_two_sample(&[1.0; 50], &[1.0; 70]);
        assert_eq!(same, KsResult { d: 0.0, p: 1.0 });
        // Known value: D for disjoint samples is 1.
        assert_eq!(ks_two_sample(&[1.0, 2.0], &[3.0, 4.0]).d, 1.0);
    }

    #[test]
    fn clip_permutation_test_sees_a_class_effect_and_not_a_clip_effect() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut effect = Vec::new();
        let mut clip_noise = Vec::new();
        for class in 0..4 {
            for _ in 0..6 {
                // Every clip has its own offset (a load burst), shared by all its values.
                let burst = rng.random::<f64>() * 0.5;
                let v: Vec<f64> = (0..200).map(|_| rng.random::<f64>() + burst).collect();
                clip_noise.push((class, v.clone()));
                effect.push((class, v.iter().map(|x| x + class as f64 * 0.4).collect()));
            }
        }
        let (d, p) = clip_permutation_test(&effect, 4, 199, 1);
        assert!(d > 0.3 && p <= 0.01, "missed a real effect: D {d}, p {p}");
        let (_, p) = clip_permutation_test(&clip_noise, 4, 199, 1);
        assert!(p > 0.01, "clip-level noise called a class effect: p {p}");
        // ...which the i.i.d. KS on pooled values does call significant: why we permute.
        let pooled = |c: usize| -> Vec<f64> {
            clip_noise
                .iter()
                .filter(|x| x.0 == c)
                .flat_map(|x| x.1.clone())
                .collect()
        };
        let min_iid_p = (0..4)
            .flat_map(|a| (a + 1..4).map(move |b| (a, b)))
            .map(|(a, b)| ks_two_sample(&pooled(a), &pooled(b)).p)
            .fold(1.0, f64::min);
        assert!(min_iid_p < 1e-3, "{min_iid_p}");
        assert_eq!(
            clip_permutation_test(&[(0, vec![1.0; 9]), (1, vec![1.0; 5])], 2, 99, 1),
            (0.0, 1.0)
        );
    }

    #[test]
    fn grouped_cv_separates_separable_classes_and_not_noise() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut d = Dataset {
            n_classes: 3,
            ..Default::default()
        };
        let mut noise = Dataset {
            n_classes: 3,
            ..Default::default()
        };
        for c in 0..3u32 {
            for clip in 0..6 {
                let g = c as usize * 6 + clip;
                for _ in 0..5 {
                    d.x.push(vec![c as f64 + rng.random::<f64>() * 0.3, rng.random()]);
                    d.y.push(c);
                    d.group.push(g);
                    noise.x.push(vec![rng.random(), rng.random()]);
                    noise.y.push(c);
                    noise.group.push(g);
                }
            }
        }
        let fold = |g: usize| fold_of(g % 6, 3);
        let r = cross_validate(&d, &fold, 3, 1).unwrap();
        assert!(r.accuracy > 0.95, "{r:?}");
        assert_eq!(r.confusion.iter().flatten().sum::<u32>() as usize, r.rows);
        let n = cross_validate(&noise, &fold, 3, 1).unwrap();
        let (lo, hi) = binomial_interval(n.clips, 1.0 / 3.0, 0.999);
        assert!(n.accuracy >= lo && n.accuracy <= hi, "{n:?}");
    }
}
