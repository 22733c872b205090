//! "Did you mean …?" for blob names, layer types and net inputs: the schema's
//! typo distance, plus case-only differences and acronyms.

use crate::schema::suggest::typo_distance;

/// The candidate closest to `word`, if any is close enough to be a likely
/// typo: equal ignoring case, an acronym of it (`LocalResponseNorm` → `LRN`),
/// or within a small edit distance.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let initials = acronym(word);
    let mut best: Option<(usize, &'a str)> = None;
    for cand in candidates {
        if cand == word {
            continue;
        }
        let score = if cand.to_lowercase() == lower {
            0
        } else if initials.len() > 1 && (cand == initials || acronym(cand) == word) {
            1
        } else {
            // At least two edits allowed: catches typos in short blob names
            // without proposing unrelated ones.
            let Some(d) = typo_distance(word, cand, 2) else { continue };
            d + 1
        };
        if best.is_none_or(|(s, _)| score < s) {
            best = Some((score, cand));
        }
    }
    best.map(|(_, c)| c)
}

/// Upper-case initials of a CamelCase name (`LocalResponseNorm` → `LRN`).
fn acronym(word: &str) -> String {
    word.chars().filter(char::is_ascii_uppercase).collect()
}

/// `a, b, c` with at most `max` names, then `… and N more`.
pub fn name_list<'a>(names: impl IntoIterator<Item = &'a str>, max: usize) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    name_list_of(names.iter().copied(), names.len(), max)
}

/// [`name_list`] of `total` names, reading only the first `max` (for long
/// lists, whose length is known).
pub fn name_list_of<'a>(
    names: impl IntoIterator<Item = &'a str>,
    total: usize,
    max: usize,
) -> String {
    let mut out = names.into_iter().take(max).collect::<Vec<_>>().join(", ");
    if total > max {
        out.push_str(&format!(" … and {} more", total - max));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acronyms_case_and_typos_are_suggested() {
        let types = ["LRN", "Convolution", "ReLU", "Crop", "Concat"];
        assert_eq!(did_you_mean("LocalResponseNorm", types), Some("LRN"));
        assert_eq!(did_you_mean("Convolutoin", types), Some("Convolution"));
        assert_eq!(did_you_mean("relu", types), Some("ReLU"));
        assert_eq!(did_you_mean("Softmax", types), None);
    }

    #[test]
    fn blob_typos_prefer_the_closest() {
        let blobs = ["norm1", "norm2", "pool2", "conv3"];
        assert_eq!(did_you_mean("norm9", blobs), Some("norm1"));
        assert_eq!(did_you_mean("pool_2", blobs), Some("pool2"));
        assert_eq!(did_you_mean("fc7", blobs), None);
        assert_eq!(did_you_mean("ocnv3", blobs), Some("conv3"), "a swap of neighbours is one edit");
    }

    #[test]
    fn long_lists_are_shortened() {
        assert_eq!(name_list(["a", "b"], 5), "a, b");
        assert_eq!(name_list(["a", "b", "c"], 2), "a, b … and 1 more");
    }
}
