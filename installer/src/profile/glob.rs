//! The small glob dialect of DMI match rules.

/// Glob match, ASCII case-insensitive: `*` any run, `?` one character, `[abc]`, `[a-z]`,
/// `[!a-z]` / `[^a-z]` one character of (not of) a set. An unclosed `[` is a literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let t: Vec<char> = text.chars().map(|c| c.to_ascii_lowercase()).collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if let Some(&c) = p.get(pi) {
            let step = match c {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => Some(pi + 1),
                '[' => match class(&p, pi, t[ti]) {
                    Some((true, next)) => Some(next),
                    Some((false, _)) => None,
                    None => (t[ti] == '[').then_some(pi + 1),
                },
                c => (c == t[ti]).then_some(pi + 1),
            };
            if let Some(next) = step {
                pi = next;
                ti += 1;
                continue;
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `p[start] == '['`: `(matched, index after ']')`,
/// or `None` when the class is not closed.
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let &lo = p.get(i)?;
        if lo == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
            let hi = p[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
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
