//! Shell-style globs for disk filters (`model = "Samsung*"`), shared by the site-file checks
//! and the planner so both agree on what a pattern means.
//!
//! `*` matches any run of characters (including none), `?` one character, `[abc]`, `[a-z]`
//! one character of a set, `[!a-z]` or `[^a-z]` one character not in it. `\` makes the next
//! character literal. Matching is case-sensitive, over characters (not bytes), and always
//! takes linear-times-pattern time (no exponential backtracking).

/// Whether `text` matches the glob `pattern` as a whole.
///
/// A malformed pattern (an unclosed `[`) never panics: the `[` then matches itself. Use
/// [`glob_check`] to refuse such patterns up front.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after the star, text index).
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if let Some((len, ok)) = match_one(&p, pi, t[ti]) {
            if ok {
                pi += len;
                ti += 1;
                continue;
            }
        } else if p.get(pi) == Some(&'*') {
            pi += 1;
            star = Some((pi, ti));
            continue;
        }
        match star {
            Some((sp, st)) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == '*')
}

/// Matches one pattern element at `pi` against `c`. Returns the element's length in the
/// pattern and whether it matched, or `None` at a `*` or the end of the pattern.
fn match_one(p: &[char], pi: usize, c: char) -> Option<(usize, bool)> {
    match p.get(pi)? {
        '*' => None,
        '?' => Some((1, true)),
        '\\' => match p.get(pi + 1) {
            Some(&lit) => Some((2, lit == c)),
            None => Some((1, c == '\\')),
        },
        '[' => match class_end(p, pi) {
            Some(end) => Some((end + 1 - pi, class_matches(&p[pi + 1..end], c))),
            None => Some((1, c == '[')),
        },
        &lit => Some((1, lit == c)),
    }
}

/// The index of the `]` closing the class that opens at `open`.
fn class_end(p: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if matches!(p.get(i), Some('!' | '^')) {
        i += 1;
    }
    // A `]` right after the opening (or after the negation) is a literal member.
    if p.get(i) == Some(&']') {
        i += 1;
    }
    while i < p.len() {
        match p[i] {
            ']' => return Some(i),
            '\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

fn class_matches(body: &[char], c: char) -> bool {
    let (negate, body) = match body.first() {
        Some('!' | '^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut found = false;
    let mut i = 0;
    while i < body.len() {
        let mut lo = body[i];
        if lo == '\\' && i + 1 < body.len() {
            i += 1;
            lo = body[i];
        }
        if body.get(i + 1) == Some(&'-') && i + 2 < body.len() {
            let hi = body[i + 2];
            if lo <= c && c <= hi {
                found = true;
            }
            i += 3;
        } else {
            if lo == c {
                found = true;
            }
            i += 1;
        }
    }
    found != negate
}

/// Whether `s` uses any glob syntax (otherwise it matches only itself).
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Checks a pattern for mistakes [`glob_match`] would silently tolerate.
pub fn glob_check(pattern: &str) -> Result<(), String> {
    let p: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => i += 2,
            '[' => match class_end(&p, i) {
                Some(end) => {
                    let body = &p[i + 1..end];
                    let body = match body.first() {
                        Some('!' | '^') => &body[1..],
                        _ => body,
                    };
                    if body.is_empty() {
                        return Err("empty `[]` class matches nothing".into());
                    }
                    for w in body.windows(3) {
                        if w[1] == '-' && w[0] > w[2] && w[0] != '\\' {
                            return Err(format!("range `{}-{}` is backwards", w[0], w[2]));
                        }
                    }
                    i = end + 1;
                }
                None => return Err("`[` is never closed with `]`".into()),
            },
            _ => i += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything", true),
            ("Samsung*", "Samsung SSD 980 1TB", true),
            ("Samsung*", "samsung SSD", false),
            ("*980*", "Samsung SSD 980 1TB", true),
            ("S6?ANS", "S64ANS", true),
            ("S6?ANS", "S6ANS", false),
            ("nvme", "nvme", true),
            ("nvme", "nvme0", false),
            ("[sn]*", "sata", true),
            ("[sn]*", "nvme", true),
            ("[sn]*", "usb", false),
            ("[!u]*", "usb", false),
            ("[^u]*", "sas", true),
            ("WD[0-9][0-9]*", "WD40EFRX", true),
            ("WD[0-9][0-9]*", "WDX0", false),
            ("[]]", "]", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("[", "[", true),
            ("a[b", "a[b", true),
            (
                "*a*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("é?", "éx", true),
            ("**", "x", true),
            ("a*b*c", "abxbxc", true),
            ("a*b*c", "abxbx", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob_match(p, t), *want, "glob_match({p:?}, {t:?})");
        }
    }

    #[test]
    fn check() {
        assert!(glob_check("Samsung*").is_ok());
        assert!(glob_check("[a-z]").is_ok());
        assert!(glob_check("[]a]").is_ok());
        assert!(glob_check("abc[").unwrap_err().contains("never closed"));
        assert!(glob_check("[z-a]").unwrap_err().contains("backwards"));
        assert!(is_glob("a*") && !is_glob("abc"));
    }
}
