//! Case → short-axis (SAX) cine series map of the Sunnybrook LV challenge.
//!
//! Contour files are named `IM-0001-<NNNN>-…` whatever the real series is, so
//! layout A (the challenge download) needs this map to find
//! `IM-<series>-<NNNN>.dcm`. Values from the public `SAX_series.txt`
//! (45 cases; SC-N-6 is 0984 there, one DSB script says 0981 — `--sax-map`
//! overrides any entry).

/// (case, SAX series) for all 45 cases, in challenge-part order
/// (Training/Part 3, Validation/Part 2, Online/Part 1).
pub const BUILTIN_SAX_MAP: [(&str, u32); 45] = [
    // Training, ContoursPart3/TrainingDataContours, images in challenge_training
    ("SC-HF-I-1", 4),
    ("SC-HF-I-2", 106),
    ("SC-HF-I-4", 116),
    ("SC-HF-I-40", 134),
    ("SC-HF-NI-3", 379),
    ("SC-HF-NI-4", 501),
    ("SC-HF-NI-34", 446),
    ("SC-HF-NI-36", 474),
    ("SC-HYP-1", 550),
    ("SC-HYP-3", 650),
    ("SC-HYP-38", 734),
    ("SC-HYP-40", 755),
    ("SC-N-2", 898),
    ("SC-N-3", 915),
    ("SC-N-40", 944),
    // Validation, ContoursPart2/ValidationDataContours, challenge_validation
    ("SC-HF-I-5", 156),
    ("SC-HF-I-6", 180),
    ("SC-HF-I-7", 209),
    ("SC-HF-I-8", 226),
    ("SC-HF-NI-7", 523),
    ("SC-HF-NI-11", 270),
    ("SC-HF-NI-31", 401),
    ("SC-HF-NI-33", 424),
    ("SC-HYP-6", 767),
    ("SC-HYP-7", 7),
    ("SC-HYP-8", 796),
    ("SC-HYP-37", 702),
    ("SC-N-5", 963),
    ("SC-N-6", 984),
    ("SC-N-7", 1009),
    // Online, ContoursPart1/OnlineDataContours, challenge_online
    ("SC-HF-I-9", 241),
    ("SC-HF-I-10", 24),
    ("SC-HF-I-11", 43),
    ("SC-HF-I-12", 62),
    ("SC-HF-NI-12", 286),
    ("SC-HF-NI-13", 304),
    ("SC-HF-NI-14", 331),
    ("SC-HF-NI-15", 359),
    ("SC-HYP-9", 3),
    ("SC-HYP-10", 579),
    ("SC-HYP-11", 601),
    ("SC-HYP-12", 629),
    ("SC-N-9", 1031),
    ("SC-N-10", 851),
    ("SC-N-11", 878),
];

/// Normalises a case name the way the reference loaders do ("shrink_case"):
/// every all-digit `-`-separated token loses its leading zeros, so
/// `SC-HF-I-01` and `SC-HF-I-1` are the same case.
pub fn normalize_case(name: &str) -> String {
    name.split('-')
        .map(|tok| {
            if !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit()) {
                let trimmed = tok.trim_start_matches('0');
                if trimmed.is_empty() { "0" } else { trimmed }.to_string()
            } else {
                tok.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The built-in SAX series of a case, by normalised name.
pub fn builtin_series(case: &str) -> Option<u32> {
    let key = normalize_case(case);
    BUILTIN_SAX_MAP.iter().find(|(c, _)| *c == key).map(|&(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_and_unpadded_names_meet() {
        assert_eq!(normalize_case("SC-HF-I-01"), "SC-HF-I-1");
        assert_eq!(normalize_case("SC-N-02"), "SC-N-2");
        assert_eq!(normalize_case("SC-HYP-40"), "SC-HYP-40");
        assert_eq!(builtin_series("SC-HF-I-01"), Some(4));
        assert_eq!(builtin_series("SC-N-6"), Some(984));
        assert_eq!(builtin_series("SC-X-1"), None);
    }

    #[test]
    fn map_has_45_distinct_cases() {
        let mut names: Vec<_> = BUILTIN_SAX_MAP.iter().map(|(c, _)| *c).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 45);
    }
}
