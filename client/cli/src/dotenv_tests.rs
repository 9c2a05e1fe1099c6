use super::*;
use proptest::prelude::*;

const MAX: usize = 65_536;

fn pairs(input: &str) -> Vec<(String, Vec<u8>)> {
    parse(input.as_bytes(), MAX)
        .unwrap()
        .into_iter()
        .map(|e| (e.name.to_string(), e.value.expose_secret().to_vec()))
        .collect()
}

fn one(input: &str) -> Vec<u8> {
    let mut all = pairs(input);
    assert_eq!(all.len(), 1, "{input:?}");
    all.remove(0).1
}

fn error(input: &str) -> ParseError {
    parse(input.as_bytes(), MAX).unwrap_err()
}

#[test]
fn comments_blank_lines_and_export_are_skipped() {
    let got = pairs("# a comment\n\n  export A=1\nexport\tB=2\n   # indented comment\nC = 3\n");
    assert_eq!(
        got,
        [
            ("A".to_owned(), b"1".to_vec()),
            ("B".to_owned(), b"2".to_vec()),
            ("C".to_owned(), b"3".to_vec())
        ]
    );
}

#[test]
fn unquoted_values_lose_inline_comments_and_trailing_blanks() {
    assert_eq!(one("A=value # comment"), b"value");
    assert_eq!(one("A=a#b"), b"a#b");
    assert_eq!(one("A= #only a comment"), b"");
    assert_eq!(one("A=#not a comment"), b"#not a comment");
    assert_eq!(one("A=x=y  \r\n"), b"x=y");
    assert_eq!(one("A="), b"");
    assert_eq!(one("A=  spaced out  "), b"spaced out");
}

#[test]
fn single_quotes_are_literal_and_may_span_lines() {
    assert_eq!(one(r"A='a\nb # $x'"), br"a\nb # $x");
    assert_eq!(
        one("A='line1\nline2' # trailing comment\n"),
        b"line1\nline2"
    );
    assert_eq!(one("A='he said \"hi\"'"), b"he said \"hi\"");
}

#[test]
fn double_quotes_have_escapes_and_may_span_lines() {
    assert_eq!(one(r#"A="a\nb\tc\r\"d\"\\e""#), b"a\nb\tc\r\"d\"\\e");
    assert_eq!(one(r#"A="keep \x and \$""#), br"keep \x and \$");
    assert_eq!(pairs("A=\"multi\nline\" \nB=2")[0].1, b"multi\nline");
    assert_eq!(one(r#"A="it's # not a comment""#), b"it's # not a comment");
}

#[test]
fn line_numbers_follow_multi_line_values() {
    let err = parse(b"A='x\ny'\n\nB=\"1\n2\n3\"\nC=c\nbad\n", MAX).unwrap_err();
    assert_eq!(err.line, 8);
}

#[test]
fn errors_name_the_line_and_the_problem() {
    let err = error("A=1\nB=2\nthis line is wrong\nD=4\n");
    assert_eq!((err.line, err.code), (3, ErrorCode::InvalidRequest));
    let err = error("A=1\n1BAD=2\n");
    assert_eq!((err.line, err.code), (2, ErrorCode::InvalidName));
    let err = error("A=1\n\nB='never closed\nC=3\n");
    assert_eq!((err.line, err.reason), (3, "unterminated single quote"));
    let err = error("A=\"never closed\n");
    assert_eq!((err.line, err.reason), (1, "unterminated double quote"));
    let err = error("A='x\ny' junk\n");
    assert_eq!(
        (err.line, err.reason),
        (2, "unexpected text after the closing quote")
    );
    let err = error("A.B-C=ok\nbad name=1\n");
    assert_eq!((err.line, err.code), (2, ErrorCode::InvalidName));
}

#[test]
fn oversized_values_are_refused() {
    let text = format!("A={}\n", "x".repeat(11));
    let err = parse(text.as_bytes(), 10).unwrap_err();
    assert_eq!((err.line, err.code), (1, ErrorCode::ValueTooLarge));
}

fn round_trip(value: &[u8]) -> Vec<u8> {
    let name = SecretName::new("K").unwrap();
    let mut file = Vec::new();
    write_entry(&mut file, &name, value).unwrap();
    let entries = parse(&file, MAX).unwrap();
    assert_eq!(entries.len(), 1);
    entries[0].value.expose_secret().to_vec()
}

#[test]
fn written_values_read_back_exactly() {
    for value in [
        &b""[..],
        b"plain",
        b"with 'single' quotes",
        b"with \"double\" quotes",
        b"both ' and \" quotes",
        b"hash # and = signs",
        b"line1\nline2\n",
        b"\r\n\\n literal backslash-n",
        b"  padded  ",
        b"\xff\xfe binary",
        b"trailing backslash \\",
        b"it's $(touch PWNED)",
        b"'",
        b"''leading and trailing''",
    ] {
        assert_eq!(round_trip(value), value);
    }
}

#[test]
fn values_are_single_quoted_with_quotes_as_close_escape_reopen() {
    let name = SecretName::new("CMD").unwrap();
    let mut file = Vec::new();
    write_entry(&mut file, &name, b"it's $(touch PWNED)").unwrap();
    assert_eq!(
        file,
        br"CMD='it'\''s $(touch PWNED)'"
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>()
    );
}

#[test]
fn single_quoted_parts_join_as_in_a_shell() {
    assert_eq!(one(r"A='it'\''s'"), b"it's");
    assert_eq!(one(r"A='a''b'"), b"ab");
    assert_eq!(one(r"A=''\'''  # a lone quote"), b"'");
    assert_eq!(pairs("A='x\n'\\''\ny'\nB=2")[0].1, b"x\n'\ny");
    let err = error(r"A='it'\''s");
    assert_eq!(err.reason, "unterminated single quote");
    let err = error(r"A='a'\x");
    assert_eq!(err.reason, "unexpected text after the closing quote");
}

#[test]
fn a_nul_byte_is_refused_without_echoing_the_value() {
    let name = SecretName::new("K").unwrap();
    let mut file = Vec::new();
    let err = write_entry(&mut file, &name, b"secret\x00part").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(file.is_empty());
}

proptest! {
    #[test]
    fn any_bytes_but_nul_round_trip(value in proptest::collection::vec(1u8.., 0..200)) {
        prop_assert_eq!(round_trip(&value), value);
    }
}

#[path = "dotenv_shell_tests.rs"]
mod shell;
