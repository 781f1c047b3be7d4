//! Promo code syntax, as Treefort fixes it: letters a-z and digits only, compared case-insensitively.

/// Longest code accepted; longer input is treated like any other invalid code.
pub const MAX_LEN: usize = 64;

/// The form codes are stored and compared in (lowercase), or `None` when the code has a character
/// Treefort does not allow. Folding is ASCII-only on purpose: nothing else is a valid character.
pub fn normalize(code: &str) -> Option<String> {
    if code.is_empty() || code.len() > MAX_LEN || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(code.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn only_ascii_letters_and_digits_are_codes() {
        assert_eq!(normalize("Spring25").as_deref(), Some("spring25"));
        for bad in [
            "",
            "SPRING-25",
            "spring 25",
            "spräng",
            "ＳＰＲＩＮＧ",
            "a_b",
            &"a".repeat(65),
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }
}
