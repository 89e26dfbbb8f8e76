//! The enumerated results of xDLMS services by their Blue Book names:
//! Data-Access-Result (GET/SET) and Action-Result (ACTION).

/// Data-Access-Result values and names (IEC 62056-5-3).
pub const DATA_ACCESS_RESULTS: &[(u8, &str)] = &[
    (0, "success"),
    (1, "hardware-fault"),
    (2, "temporary-failure"),
    (3, "read-write-denied"),
    (4, "object-undefined"),
    (9, "object-class-inconsistent"),
    (11, "object-unavailable"),
    (12, "type-unmatched"),
    (13, "scope-of-access-violated"),
    (14, "data-block-unavailable"),
    (15, "long-get-aborted"),
    (16, "no-long-get-in-progress"),
    (17, "long-set-aborted"),
    (18, "no-long-set-in-progress"),
    (19, "data-block-number-invalid"),
    (250, "other-reason"),
];

/// Action-Result values and names (IEC 62056-5-3).
pub const ACTION_RESULTS: &[(u8, &str)] = &[
    (0, "success"),
    (1, "hardware-fault"),
    (2, "temporary-failure"),
    (3, "read-write-denied"),
    (4, "object-undefined"),
    (9, "object-class-inconsistent"),
    (11, "object-unavailable"),
    (12, "type-unmatched"),
    (13, "scope-of-access-violated"),
    (14, "data-block-unavailable"),
    (15, "long-action-aborted"),
    (16, "no-long-action-in-progress"),
    (250, "other-reason"),
];

/// The name of `value` in `table`.
pub fn name_of(table: &[(u8, &'static str)], value: u8) -> Option<&'static str> {
    table.iter().find(|(v, _)| *v == value).map(|(_, n)| *n)
}

/// The value named `name` in `table`.
pub fn value_of(table: &[(u8, &'static str)], name: &str) -> Option<u8> {
    table.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for table in [DATA_ACCESS_RESULTS, ACTION_RESULTS] {
            for (v, n) in table {
                assert_eq!(value_of(table, n), Some(*v));
                assert_eq!(name_of(table, *v), Some(*n));
            }
        }
        assert_eq!(name_of(DATA_ACCESS_RESULTS, 4), Some("object-undefined"));
        assert_eq!(name_of(ACTION_RESULTS, 5), None);
    }
}
