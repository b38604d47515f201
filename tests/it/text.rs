//! The tokenizer and the `match()` query language (the SQL behaviour is in sql/match.slt).

use timberline_udfs::text::tokenize::tokens;
use timberline_udfs::text::Query;

fn q(text: &str) -> Query {
    Query::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn term(t: &str) -> Query {
    Query::Term(t.into())
}

#[test]
fn tokenizer_keeps_searchable_ids_whole() {
    assert_eq!(
        tokens("Connection reset by peer"),
        ["connection", "reset", "by", "peer"]
    );
    assert_eq!(
        tokens("Receiving block blk_-6952295868487656571 src: /10.250.19.102:54106 dest:"),
        [
            "receiving",
            "block",
            "blk_-6952295868487656571",
            "src",
            "10.250.19.102",
            "54106",
            "dest"
        ]
    );
    assert_eq!(
        tokens("user_id=u42 status=500"),
        ["user", "id", "u42", "status", "500"]
    );
    assert_eq!(
        tokens("req 123E4567-e89b-12d3-a456-426614174000 done."),
        ["req", "123e4567-e89b-12d3-a456-426614174000", "done"]
    );
    assert_eq!(
        tokens("ext4_find_entry:1455: ÉTÉ"),
        ["ext4", "find", "entry", "1455", "été"]
    );
    assert_eq!(
        tokens("trace 949734939c6953dfb6e6319191e692f6"),
        ["trace", "949734939c6953dfb6e6319191e692f6"]
    );
    // Not an IP (an octet over 255, or five parts): split like any other chunk.
    assert_eq!(tokens("v1.256.0.1"), ["v1", "256", "0", "1"]);
    assert_eq!(tokens("1.2.3.4.5"), ["1", "2", "3", "4", "5"]);
    let long = tokens(&"é".repeat(100));
    assert!(long[0].len() <= 64 && long[0].chars().all(|c| c == 'é'));
    assert!(tokens(" ... -- ").is_empty());
}

#[test]
fn queries_parse_to_the_documented_shapes() {
    assert_eq!(q("timeout"), term("timeout"));
    assert_eq!(
        q("Timeout bank"),
        Query::And(vec![term("timeout"), term("bank")])
    );
    assert_eq!(
        q("a AND b OR c"),
        Query::Or(vec![Query::And(vec![term("a"), term("b")]), term("c")])
    );
    assert_eq!(
        q("a (b OR c)"),
        Query::And(vec![term("a"), Query::Or(vec![term("b"), term("c")])])
    );
    assert_eq!(
        q("-a NOT b"),
        Query::And(vec![
            Query::Not(Box::new(term("a"))),
            Query::Not(Box::new(term("b")))
        ])
    );
    assert_eq!(
        q("\"Card declined\""),
        Query::Phrase(vec!["card".into(), "declined".into()])
    );
    assert_eq!(q("id=12"), Query::Phrase(vec!["id".into(), "12".into()]));
    assert_eq!(q("10.0.0.1"), term("10.0.0.1"));
    assert_eq!(q("decl*"), Query::Prefix("decl".into()));
    assert_eq!(q("blk_-69*"), Query::Prefix("blk_-69".into()));
    assert_eq!(q("*clin*"), Query::Wildcard("*clin*".into()));
    assert_eq!(q("10.250.*"), Query::Wildcard("10.250.*".into()));
    assert_eq!(q("t?me*ut"), Query::Wildcard("t?me*ut".into()));
    // Lowercase and/or are words, not operators.
    assert_eq!(q("and"), term("and"));
    // field:value on a known field (any case of the name); level values upper-cased.
    let field = |f: &str, v: &str| Query::Field {
        field: f.into(),
        value: v.into(),
    };
    assert_eq!(q("Level:warn"), field("level", "WARN"));
    assert_eq!(
        q("service:\"my api\" -host:h1"),
        Query::And(vec![
            field("service", "my api"),
            Query::Not(Box::new(field("host", "h1")))
        ])
    );
    assert_eq!(
        q("region:eu"),
        Query::Phrase(vec!["region".into(), "eu".into()])
    );
}

/// `match()` plans field terms by writing the text parts back as query text: that text must
/// parse to the very same query, or the search would change.
#[test]
fn rendered_queries_parse_back_to_themselves() {
    use timberline_udfs::text::query::Part;
    for text in [
        "timeout",
        "a AND b OR c",
        "-a NOT (b OR \"card declined\")",
        "decl* *clin* t?me*ut 10.250.* blk_-69* 10.0.0.1 id=12",
        "ÜBER x AND (y OR NOT \"z w\")",
        "service:api (level:error OR trace_id:\"t 1\") -host:h",
    ] {
        let parsed = q(text);
        assert_eq!(q(&parsed.render()), parsed, "{text}");
    }
    // The largest subtrees without fields become text, each parsing back to its subtree.
    let Part::And(parts) = q("timeout bank service:api").to_parts() else {
        panic!("an AND of parts");
    };
    assert_eq!(parts.len(), 3);
    assert!(
        matches!(&parts[2], Part::Field { field, value } if field == "service" && value == "api")
    );
    let Part::Text(t) = &parts[0] else {
        panic!("text part");
    };
    assert_eq!(q(t), term("timeout"));
    assert_eq!(
        q("a (b OR c)").to_parts(),
        Part::Text(q("a (b OR c)").render())
    );
}

#[test]
fn bad_queries_say_why() {
    for (text, why) in [
        ("", "empty"),
        ("AND", "AND needs a term"),
        ("a OR", "empty query or group"),
        ("OR a", "OR needs a term"),
        ("(a", "unbalanced '('"),
        ("a)", "unbalanced ')'"),
        ("\"a", "unterminated"),
        ("- a", "'-' must be followed"),
        ("NOT", "missing at the end"),
        ("***", "no search terms"),
        ("\"...\"", "no search terms"),
        ("service:", "service: needs a value"),
        ("level:\"\"", "needs a value"),
    ] {
        let e = Query::parse(text).expect_err(text);
        assert!(e.to_string().contains(why), "{text:?}: {e}");
    }
    assert!(Query::parse(&"a ".repeat(3000)).is_err());
    // Nesting is bounded (evaluation recurses): deep input is an error, not a stack overflow.
    let deep = format!("{}a{}", "(".repeat(2000), ")".repeat(2000));
    assert!(Query::parse(&deep)
        .unwrap_err()
        .to_string()
        .contains("nested deeper"));
    assert!(Query::parse(&"NOT ".repeat(1000))
        .unwrap_err()
        .to_string()
        .contains("nested deeper"));
    assert!(Query::parse(&format!("{}a{}", "(".repeat(30), ")".repeat(30))).is_ok());
}

#[test]
fn queries_match_texts() {
    let text = "Receiving block blk_-42 src: /10.250.19.102:54106 dest: Connection reset by peer";
    for (query, want) in [
        ("block", true),
        ("BLOCK peer", true),
        ("block missing", false),
        ("block OR missing", true),
        ("-missing", true),
        ("NOT block", false),
        ("\"reset by peer\"", true),
        ("\"peer by reset\"", false),
        ("\"connection reset\" -(missing OR absent)", true),
        ("rec*", true),
        ("blk_-4*", true),
        ("blk_-5*", false),
        ("*ceiv*", true),
        ("10.250.*", true),
        ("10.250.19.102", true),
        ("54106", true),
        ("b?ock", true),
        ("b?ck", false),
    ] {
        assert_eq!(q(query).matches_text(text), want, "{query}");
    }
}
