//! The small glob dialect of DMI match rules: the site file's globs, ASCII case-insensitive
//! (firmware vendors are inconsistent about case: "LENOVO", "Lenovo").

/// Glob match, ASCII case-insensitive: `*` any run, `?` one character, `[abc]`, `[a-z]`,
/// `[!a-z]` / `[^a-z]` one character of (not of) a set. An unclosed `[` is a literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    tappaas_site::glob_match(&pattern.to_ascii_lowercase(), &text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("10T7*", "10T7002XMX"));
        assert!(glob_match("10t7*", "10T7002XMX"));
        assert!(!glob_match("10T7*", "10T8002XMX"));
        assert!(glob_match("10T[78]*", "10T8002XMX"));
        assert!(!glob_match("10T[!78]*", "10T8002XMX"));
        assert!(glob_match("NUC13AN?i5", "NUC13ANHi5"));
        assert!(glob_match("*", ""));
        assert!(glob_match("Standard PC*", "Standard PC (Q35 + ICH9, 2009)"));
        assert!(glob_match("a*b*c", "aXXbYYbc"));
        assert!(!glob_match("a*b*c", "aXXbYYbd"));
        assert!(glob_match("x[", "x["));
        assert!(glob_match("[]]", "]"));
        assert!(glob_match("MS-01", "ms-01"));
        assert!(!glob_match("MS-01", "MS-01X"));
    }
}
