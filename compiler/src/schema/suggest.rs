//! "Did you mean …?" for misspelt field names, enum values, layer types and
//! solver settings.

/// The candidate closest to `word` by edit distance (adjacent transpositions
/// count as one edit), if it is close enough to be a plausible typo: at most
/// one edit per three characters of `word`, and at least one allowed.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .filter_map(|c| typo_distance(word, c, 1).map(|d| (d, c)))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// The case-insensitive edit distance from `word` to `candidate` when it is
/// small enough for a typo: at most one edit per three characters of `word`,
/// and at least `min_budget` (the IR's blob and type names allow two, so that
/// short names still get suggestions).
pub fn typo_distance(word: &str, candidate: &str, min_budget: usize) -> Option<usize> {
    let budget = (word.chars().count() / 3).max(min_budget);
    let d = edit_distance(&word.to_lowercase(), &candidate.to_lowercase());
    (d <= budget).then_some(d)
}

/// A help line: "did you mean `x`?" when a close candidate exists, else a
/// short list of what is valid (`what` names the set, e.g. "fields of
/// ConvolutionParameter").
pub fn did_you_mean(word: &str, candidates: &[&str], what: &str) -> String {
    if let Some(best) = closest(word, candidates.iter().copied()) {
        return format!("did you mean `{best}`?");
    }
    list_valid(candidates, what)
}

/// "valid {what}: `a`, `b`, …" with at most eight names.
pub fn list_valid(candidates: &[&str], what: &str) -> String {
    const SHOWN: usize = 8;
    let mut list =
        candidates.iter().take(SHOWN).map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    if candidates.len() > SHOWN {
        list.push_str(&format!(", … ({} in all)", candidates.len()));
    }
    format!("valid {what}: {list}")
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent swaps).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("num_ouput", "num_output"), 1);
        assert_eq!(edit_distance("nmu_output", "num_output"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_only_close_names() {
        let fields = ["num_output", "bias_term", "pad", "kernel_size"];
        assert_eq!(closest("num_ouput", fields), Some("num_output"));
        assert_eq!(closest("kernelsize", fields), Some("kernel_size"));
        assert_eq!(closest("xyzzy", fields), None);
        assert_eq!(closest("Adam", ["SGD", "adam"]), Some("adam"));
    }

    #[test]
    fn typo_budget_is_a_third_of_the_word_with_a_floor() {
        assert_eq!(typo_distance("Conv", "conv", 1), Some(0));
        assert_eq!(typo_distance("ab", "xy", 1), None);
        assert_eq!(typo_distance("ab", "xy", 2), Some(2));
        assert_eq!(typo_distance("kernel_size", "kernle_sze", 1), Some(2));
        assert_eq!(typo_distance("kernel_size", "stride", 1), None);
    }

    #[test]
    fn lists_valid_names_when_nothing_is_close() {
        let help = did_you_mean("zzz", &["a1", "b2"], "values");
        assert_eq!(help, "valid values: `a1`, `b2`");
        let many: Vec<&str> = ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8"].to_vec();
        assert!(did_you_mean("qqqq", &many, "fields").ends_with("… (9 in all)"));
    }
}
