//! The token rules, one by one, on tokens minted here.

use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const NOW: u64 = 1_800_000_000;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn mint_with(secret: &[u8], header: &str, claims: &str) -> String {
    let signed = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(signed.as_bytes());
    format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
}

fn mint(claims: &str) -> String {
    mint_with(SECRET, r#"{"alg":"HS256","typ":"JWT"}"#, claims)
}

fn rules() -> TokenRules {
    TokenRules::new(SECRET, vec!["private-*".into(), "staff".into()])
}

fn check(token: Option<&str>, hostid: &str, channel: &str) -> Result<(), Refusal> {
    authorize(&rules(), token, hostid, channel, NOW)
}

#[test]
fn a_valid_token_opens_its_channels() {
    let token = mint(r#"{"exp":1800000060,"ch":["private-a","staff"]}"#);
    assert_eq!(check(Some(&token), "h", "private-a"), Ok(()));
    assert_eq!(check(Some(&token), "h", "staff"), Ok(()));
    assert_eq!(check(Some(&token), "h", "private-b"), Err(Refusal::Channel));
}

#[test]
fn channels_no_pattern_names_need_nothing() {
    assert_eq!(check(None, "h", "public"), Ok(()));
    assert_eq!(check(Some("garbage"), "h", "public"), Ok(()));
    assert_eq!(
        check(None, "h", "staffroom"),
        Ok(()),
        "patterns match whole names"
    );
    let off = TokenRules::default();
    assert!(!off.active());
    assert_eq!(authorize(&off, None, "h", "private-a", NOW), Ok(()));
}

#[test]
fn a_trailing_star_in_ch_is_a_prefix() {
    let token = mint(r#"{"exp":1800000060,"ch":["private-room*"]}"#);
    assert_eq!(check(Some(&token), "h", "private-room"), Ok(()));
    assert_eq!(check(Some(&token), "h", "private-room7"), Ok(()));
    assert_eq!(
        check(Some(&token), "h", "private-roo"),
        Err(Refusal::Channel)
    );
    let all = mint(r#"{"exp":1800000060,"ch":["*"]}"#);
    assert_eq!(check(Some(&all), "h", "staff"), Ok(()));
    // Only a trailing star is special.
    let inner = mint(r#"{"exp":1800000060,"ch":["private-*-x"]}"#);
    assert_eq!(
        check(Some(&inner), "h", "private-a-x"),
        Err(Refusal::Channel)
    );
    assert_eq!(check(Some(&inner), "h", "private-*-x"), Ok(()));
}

#[test]
fn expiry_is_exclusive_and_required() {
    let at = |exp: &str| {
        check(
            Some(&mint(&format!(r#"{{"exp":{exp},"ch":["staff"]}}"#))),
            "h",
            "staff",
        )
    };
    assert_eq!(at("1800000001"), Ok(()));
    assert_eq!(at("1800000000"), Err(Refusal::Expired));
    assert_eq!(at("1799999999"), Err(Refusal::Expired));
    assert_eq!(at("1800000000.5"), Ok(()));
    assert_eq!(at("\"1900000000\""), Err(Refusal::Malformed));
    assert_eq!(
        check(Some(&mint(r#"{"ch":["staff"]}"#)), "h", "staff"),
        Err(Refusal::Malformed)
    );
}

#[test]
fn nbf_is_honoured() {
    let token = mint(r#"{"exp":1800000060,"nbf":1800000001,"ch":["staff"]}"#);
    assert_eq!(check(Some(&token), "h", "staff"), Err(Refusal::NotYetValid));
    let token = mint(r#"{"exp":1800000060,"nbf":1800000000,"ch":["staff"]}"#);
    assert_eq!(check(Some(&token), "h", "staff"), Ok(()));
}

#[test]
fn sub_binds_the_token_to_one_hostid() {
    let token = mint(r#"{"exp":1800000060,"ch":["staff"],"sub":"Alice1"}"#);
    assert_eq!(check(Some(&token), "Alice1", "staff"), Ok(()));
    assert_eq!(check(Some(&token), "alice1", "staff"), Err(Refusal::Hostid));
    let token = mint(r#"{"exp":1800000060,"ch":["staff"],"sub":7}"#);
    assert_eq!(check(Some(&token), "7", "staff"), Err(Refusal::Malformed));
}

#[test]
fn other_algorithms_and_none_are_refused() {
    let claims = r#"{"exp":1800000060,"ch":["staff"]}"#;
    for header in [
        r#"{"alg":"none"}"#,
        r#"{"alg":"None"}"#,
        r#"{"alg":"HS512"}"#,
        r#"{"alg":"hs256"}"#,
        r#"{"alg":"RS256"}"#,
        r#"{"typ":"JWT"}"#,
        r#"{"alg":"HS256","crit":["exp"]}"#,
    ] {
        let token = mint_with(SECRET, header, claims);
        assert_eq!(
            check(Some(&token), "h", "staff"),
            Err(Refusal::Algorithm),
            "{header}"
        );
    }
    // The unsigned form: no signature at all.
    let unsigned = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims.as_bytes()));
    assert_eq!(
        check(Some(&unsigned), "h", "staff"),
        Err(Refusal::Algorithm)
    );
    let unsigned = format!("{}.{}.", b64(br#"{"alg":"HS256"}"#), b64(claims.as_bytes()));
    assert_eq!(
        check(Some(&unsigned), "h", "staff"),
        Err(Refusal::Signature)
    );
}

#[test]
fn a_wrong_signature_is_refused() {
    let claims = r#"{"exp":1800000060,"ch":["staff"]}"#;
    let other = mint_with(
        b"another secret of enough length!",
        r#"{"alg":"HS256"}"#,
        claims,
    );
    assert_eq!(check(Some(&other), "h", "staff"), Err(Refusal::Signature));
    // The claims changed after signing.
    let token = mint(claims);
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let (header, _) = signed.split_once('.').unwrap();
    let widened = b64(br#"{"exp":1800000060,"ch":["*"]}"#);
    let forged = format!("{header}.{widened}.{signature}");
    assert_eq!(
        check(Some(&forged), "h", "private-x"),
        Err(Refusal::Signature)
    );
    // A truncated signature.
    let short = &token[..token.len() - 2];
    assert!(check(Some(short), "h", "staff").is_err());
    // An empty secret verifies nothing, not even a token signed with it.
    let empty = TokenRules::new(b"", vec!["staff".into()]);
    let token = mint_with(b"", r#"{"alg":"HS256"}"#, claims);
    assert_eq!(
        authorize(&empty, Some(&token), "h", "staff", NOW),
        Err(Refusal::Signature)
    );
}

#[test]
fn malformed_tokens() {
    let good = mint(r#"{"exp":1800000060,"ch":["staff"]}"#);
    for bad in [
        "",
        "a",
        "a.b",
        "a.b.c.d",
        &format!("{good}.x"),
        &format!("{good}="),
        &good.replacen('.', "=.", 1),
        &format!("{}.e30.sig", b64(b"[]")),
        &format!("{}.{}.", b64(b"{"), b64(b"{}")),
        &"a".repeat(MAX_TOKEN + 1),
    ] {
        let got = check(Some(bad), "h", "staff");
        assert!(
            matches!(got, Err(Refusal::Malformed | Refusal::Signature)),
            "{bad:?}: {got:?}"
        );
    }
    for claims in [
        r#"{"exp":1800000060}"#,
        r#"{"exp":1800000060,"ch":"staff"}"#,
        r#"{"exp":1800000060,"ch":["staff",1]}"#,
        r#"{"exp":1800000060,"ch":["staff"],"nbf":"x"}"#,
        r#"[1800000060]"#,
    ] {
        assert_eq!(
            check(Some(&mint(claims)), "h", "staff"),
            Err(Refusal::Malformed),
            "{claims}"
        );
    }
    assert_eq!(check(None, "h", "staff"), Err(Refusal::Missing));
}

/// Tokens minted elsewhere verify here: RFC 7515 appendix A.1 (an HS256
/// JWS with a JWK key) and jwt.io's example. Neither has `ch`, so a good
/// signature shows as Malformed claims and a bad one as Signature.
#[test]
fn tokens_minted_by_others_verify() {
    let rfc_key = URL_SAFE_NO_PAD
        .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
        .unwrap();
    let rfc = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.\
        eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.\
        dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    assert_eq!(
        verify(&rfc_key, rfc, 1_300_000_000),
        Err(Refusal::Malformed)
    );
    assert_eq!(verify(SECRET, rfc, 1_300_000_000), Err(Refusal::Signature));
    let jwt_io = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
        eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.\
        SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    assert_eq!(
        verify(b"your-256-bit-secret", jwt_io, NOW),
        Err(Refusal::Malformed)
    );
    assert_eq!(verify(SECRET, jwt_io, NOW), Err(Refusal::Signature));
}

#[test]
fn all_channels_of_a_request_are_checked_with_one_token() {
    let token = mint(r#"{"exp":1800000060,"ch":["private-a"]}"#);
    let rules = rules();
    let ok = authorize_all(&rules, Some(&token), "h", ["public", "private-a"], NOW);
    assert_eq!(ok, Ok(()));
    let refused = authorize_all(&rules, Some(&token), "h", ["private-a", "staff"], NOW);
    assert_eq!(refused, Err(Refusal::Channel));
    assert_eq!(authorize_all(&rules, None, "h", ["public"], NOW), Ok(()));
}

#[test]
fn the_token_comes_from_the_query_a_bearer_header_or_the_cookie() {
    let head = |text: &str| from_head(text.as_bytes());
    assert_eq!(
        head("GET /push/h/m/c?token=q HTTP/1.1\n").as_deref(),
        Some("q")
    );
    assert_eq!(
        head("GET /push/h/m/c HTTP/1.1\nAuthorization: bearer  b\n").as_deref(),
        Some("b")
    );
    assert_eq!(
        head("GET /push/h/m/c HTTP/1.1\nAuthorization: Basic b\n"),
        None
    );
    assert_eq!(
        head("GET /push/h/m/c HTTP/1.1\nCookie: meteord_token=k\n").as_deref(),
        Some("k")
    );
    assert_eq!(
        head(
            "GET /push/h/m/c?token=q HTTP/1.1\nAuthorization: Bearer b\nCookie: meteord_token=k\n"
        )
        .as_deref(),
        Some("q"),
        "the query first"
    );
    assert_eq!(head("GET /push/h/m/c?token= HTTP/1.1\n"), None);
}

#[test]
fn the_secret_stays_out_of_debug_output() {
    let text = format!("{:?}", TokenRules::new(b"s3cr3t-value", vec!["p*".into()]));
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("<12 bytes>"), "{text}");
}

#[test]
fn shell_patterns() {
    let m = |p: &str, n: &str| glob(p.as_bytes(), n.as_bytes());
    assert!(m("private-*", "private-"));
    assert!(m("private-*", "private-abc"));
    assert!(!m("private-*", "xprivate-a"));
    assert!(m("*", ""));
    assert!(m("a*b*c", "aXbYbZc"));
    assert!(!m("a*b*c", "aXbYbZ"));
    assert!(m("room?", "room1"));
    assert!(!m("room?", "room"));
    assert!(m("r[0-9]", "r5"));
    assert!(!m("r[0-9]", "rx"));
    assert!(m("r[!0-9]", "rx"));
    assert!(m("r[^0-9]", "rx"));
    assert!(m("r[]x]", "r]"));
    assert!(m("r[ab-]", "r-"));
    assert!(m("r[", "r["), "an unclosed class is a literal");
    assert!(!m("staff", "staffroom"));
    assert!(m("*-*", "a-b"));
}
