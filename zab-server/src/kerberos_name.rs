//! A Kerberos principal's `sasl` id, as ZooKeeper's `KerberosName` (copied
//! from Hadoop) and `SaslServerCallbackHandler` make it: the short name from
//! the `auth_to_local` rules (`zookeeper.security.auth_to_local`, default
//! `DEFAULT`), then `/host` and `@realm` added back unless
//! `kerberos.removeHostFromPrincipal` / `removeRealmFromPrincipal` say
//! otherwise. A principal no rule maps keeps its whole name, as ZooKeeper's
//! handler then leaves the authorization id as it was.
//!
//! Rules: `DEFAULT` (the first component, for principals of the default
//! realm) and `RULE:[n:format](regex)s/from/to/g` (principals of `n`
//! components; `format` builds a string from `$0` = realm, `$1`, `$2` = the
//! components; it must match `regex` whole; the optional substitution,
//! first or every match with `g`, gives the name). A rule whose result
//! still holds `/` or `@` fails the mapping.

use regex::Regex;

/// `zookeeper.security.auth_to_local`'s rules, parsed.
#[derive(Clone, Debug)]
pub struct Rules(Vec<Rule>);

#[derive(Clone, Debug)]
enum Rule {
    Default,
    Custom {
        components: usize,
        format: String,
        matches: Option<Regex>,
        substitution: Option<(Regex, String, bool)>,
    },
}

impl Default for Rules {
    fn default() -> Self {
        Rules(vec![Rule::Default])
    }
}

impl PartialEq for Rules {
    fn eq(&self, other: &Rules) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Rules {}

impl std::fmt::Display for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, rule) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match rule {
                Rule::Default => f.write_str("DEFAULT")?,
                Rule::Custom {
                    components,
                    format,
                    matches,
                    substitution,
                } => {
                    write!(f, "RULE:[{components}:{format}]")?;
                    if let Some(m) = matches {
                        // Shown as written, without the anchors added.
                        let text = m.as_str();
                        let inner = &text[4..text.len() - 2];
                        write!(f, "({inner})")?;
                    }
                    if let Some((from, to, global)) = substitution {
                        write!(f, "s/{from}/{to}/{}", if *global { "g" } else { "" })?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Rules {
    /// Parses rules as `KerberosName.parseRules` does: one after another,
    /// separated by white space.
    pub fn parse(text: &str) -> Result<Rules, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = r.trim_start();
                continue;
            }
            let invalid = || format!("invalid auth_to_local rule: {rest}");
            let r = rest.strip_prefix("RULE:[").ok_or_else(invalid)?;
            let colon = r.find(':').ok_or_else(invalid)?;
            let components: usize = r[..colon].parse().map_err(|_| invalid())?;
            let r = &r[colon + 1..];
            let close = r.find(']').ok_or_else(invalid)?;
            let format = r[..close].to_owned();
            let mut r = &r[close + 1..];
            let mut matches = None;
            if let Some(m) = r.strip_prefix('(') {
                let end = m.find(')').ok_or_else(invalid)?;
                let re = Regex::new(&format!("^(?:{})$", &m[..end]))
                    .map_err(|e| format!("auth_to_local rule {rest}: {e}"))?;
                matches = Some(re);
                r = &m[end + 1..];
            }
            let mut substitution = None;
            if let Some(s) = r.strip_prefix("s/") {
                let mid = s.find('/').ok_or_else(invalid)?;
                let after = &s[mid + 1..];
                let end = after.find('/').ok_or_else(invalid)?;
                let from =
                    Regex::new(&s[..mid]).map_err(|e| format!("auth_to_local rule {rest}: {e}"))?;
                let to = java_replacement(&after[..end]);
                let mut tail = &after[end + 1..];
                let global = tail.starts_with('g');
                if global {
                    tail = &tail[1..];
                }
                substitution = Some((from, to, global));
                r = tail;
            }
            rules.push(Rule::Custom {
                components,
                format,
                matches,
                substitution,
            });
            rest = r.trim_start();
        }
        Ok(Rules(rules))
    }

    /// The short name of a principal of `components` and `realm`, by the
    /// first rule that gives one; `None` when none does, or when the one
    /// that does leaves a `/` or `@`.
    fn short_name(&self, default_realm: &str, realm: &str, components: &[&str]) -> Option<String> {
        let mut params = vec![realm];
        params.extend(components);
        for rule in &self.0 {
            let result = match rule {
                Rule::Default => (realm == default_realm).then(|| components[0].to_owned()),
                Rule::Custom {
                    components: n,
                    format,
                    matches,
                    substitution,
                } if *n == components.len() => {
                    let base = replace_parameters(format, &params)?;
                    if matches.as_ref().is_some_and(|m| !m.is_match(&base)) {
                        None
                    } else {
                        Some(match substitution {
                            None => base,
                            Some((from, to, true)) => from.replace_all(&base, to.as_str()).into(),
                            Some((from, to, false)) => from.replace(&base, to.as_str()).into(),
                        })
                    }
                }
                Rule::Custom { .. } => None,
            };
            if let Some(name) = result {
                return (!name.contains(['/', '@'])).then_some(name);
            }
        }
        None
    }
}

/// A Java replacement string for the `regex` crate: Java reads `$1x` as
/// group 1 then `x`, the crate as a group named `1x`.
fn java_replacement(to: &str) -> String {
    let mut out = String::new();
    let mut chars = to.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    out.push(*d);
                    chars.next();
                }
                out.push('}');
            }
            c => out.push(c),
        }
    }
    out
}

/// `$0`, `$1`, `$2` in a rule's format; an index past the parameters fails
/// the mapping.
fn replace_parameters(format: &str, params: &[&str]) -> Option<String> {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        if digits.is_empty() {
            continue;
        }
        out.push_str(params.get(digits.parse::<usize>().ok()?)?);
    }
    Some(out)
}

/// How principals become `sasl` ids on this server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameMapping {
    pub rules: Rules,
    /// `kerberos.removeHostFromPrincipal`.
    pub remove_host: bool,
    /// `kerberos.removeRealmFromPrincipal`.
    pub remove_realm: bool,
}

impl NameMapping {
    /// The `sasl` id of `principal`, for a library whose default realm is
    /// `default_realm`.
    pub fn id(&self, default_realm: &str, principal: &str) -> String {
        let Some((name, realm)) = principal.split_once('@') else {
            // Already simple: KerberosName returns it as it is.
            return principal.to_owned();
        };
        let (service, host) = match name.split_once('/') {
            Some((s, h)) => (s, Some(h)),
            None => (name, None),
        };
        let components: Vec<&str> = std::iter::once(service).chain(host).collect();
        let Some(short) = self.rules.short_name(default_realm, realm, &components) else {
            return principal.to_owned();
        };
        let mut id = short;
        if let Some(h) = host.filter(|_| !self.remove_host) {
            id.push('/');
            id.push_str(h);
        }
        if !self.remove_realm {
            id.push('@');
            id.push_str(realm);
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(rules: &str, remove_host: bool, remove_realm: bool, principal: &str) -> String {
        NameMapping {
            rules: Rules::parse(rules).unwrap(),
            remove_host,
            remove_realm,
        }
        .id("ZAB.TEST", principal)
    }

    #[test]
    fn the_default_rule_and_the_remove_flags() {
        assert_eq!(
            id("DEFAULT", false, false, "client@ZAB.TEST"),
            "client@ZAB.TEST"
        );
        assert_eq!(id("DEFAULT", false, true, "client@ZAB.TEST"), "client");
        assert_eq!(
            id("DEFAULT", false, false, "svc/host@ZAB.TEST"),
            "svc/host@ZAB.TEST"
        );
        assert_eq!(
            id("DEFAULT", true, false, "svc/host@ZAB.TEST"),
            "svc@ZAB.TEST"
        );
        assert_eq!(id("DEFAULT", true, true, "svc/host@ZAB.TEST"), "svc");
        // Another realm matches no rule: kept whole.
        assert_eq!(
            id("DEFAULT", true, true, "client@OTHER.REALM"),
            "client@OTHER.REALM"
        );
        assert_eq!(id("DEFAULT", true, true, "simple"), "simple");
    }

    /// Hadoop's documented kind of rules: map another realm's users, and a
    /// service's principals to one name; the first rule that applies wins.
    #[test]
    fn custom_rules_map_as_hadoops_do() {
        let rules = "RULE:[1:$1@$0](.*@OTHER\\.REALM)s/@.*// \
                     RULE:[2:$1](hbase)s/.*/hbase-service/ DEFAULT";
        assert_eq!(id(rules, false, true, "alice@OTHER.REALM"), "alice");
        assert_eq!(
            id(rules, false, false, "alice@OTHER.REALM"),
            "alice@OTHER.REALM"
        );
        assert_eq!(
            id(rules, true, true, "hbase/node1@ZAB.TEST"),
            "hbase-service"
        );
        assert_eq!(id(rules, false, true, "client@ZAB.TEST"), "client");
        // Matched by none: whole.
        assert_eq!(id(rules, true, true, "bob@THIRD.REALM"), "bob@THIRD.REALM");
        // `g` replaces every match, without it only the first.
        assert_eq!(id("RULE:[1:$1]s/a/x/g", false, true, "banana@R"), "bxnxnx");
        assert_eq!(id("RULE:[1:$1]s/a/x/", false, true, "banana@R"), "bxnana");
        // Java's `$1x` is group 1, then `x`.
        assert_eq!(
            id("RULE:[1:$1](a.*)s/a(.*)/$1x/", false, true, "abc@R"),
            "bcx"
        );
        // A result that is not simple fails the mapping.
        assert_eq!(id("RULE:[1:$1@$0]", false, true, "alice@R"), "alice@R");
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        for bad in [
            "NOPE",
            "RULE:[x:$1]",
            "RULE:[1:$1",
            "RULE:[1:$1](unclosed",
            "RULE:[1:$1]s/a/b",
        ] {
            assert!(Rules::parse(bad).is_err(), "{bad}");
        }
        assert!(Rules::parse("RULE:[1:$1]([)")
            .unwrap_err()
            .contains("auth_to_local"));
        let round = "RULE:[1:$1@$0](.*@R)s/@.*//g DEFAULT";
        assert_eq!(Rules::parse(round).unwrap().to_string(), round);
    }
}
