//! Loghub event templates (embedded) and how their `<*>` slots are filled.

use std::sync::LazyLock;

use rand::Rng;

/// One event template, split at its `<*>` slots.
pub struct Template {
    pub id: String,
    pub parts: Vec<String>,
}

const SOURCES: [&str; 8] = [
    include_str!("templates/HDFS.csv"),
    include_str!("templates/Zookeeper.csv"),
    include_str!("templates/Spark.csv"),
    include_str!("templates/Linux.csv"),
    include_str!("templates/OpenSSH.csv"),
    include_str!("templates/Apache.csv"),
    include_str!("templates/Hadoop.csv"),
    include_str!("templates/OpenStack.csv"),
];

/// Every embedded template.
pub static TEMPLATES: LazyLock<Vec<Template>> = LazyLock::new(|| {
    let mut out = Vec::new();
    for src in SOURCES {
        for line in src.lines().skip(1) {
            // `EventId,EventTemplate[,Occurrences]`; the template may be quoted.
            let Some((id, rest)) = line.split_once(',') else {
                continue;
            };
            let text = if let Some(q) = rest.strip_prefix('"') {
                q.rsplit_once('"')
                    .map(|(t, _)| t.replace("\"\"", "\""))
                    .unwrap_or_default()
            } else {
                rest.rsplit_once(',')
                    .filter(|(_, n)| n.parse::<u64>().is_ok())
                    .map_or(rest, |(t, _)| t)
                    .to_string()
            };
            if text.is_empty() {
                continue;
            }
            out.push(Template {
                id: id.to_string(),
                parts: text.split("<*>").map(str::to_string).collect(),
            });
        }
    }
    if out.is_empty() {
        out.push(Template {
            id: "E0".into(),
            parts: vec!["request handled in ".into(), " ms".into()],
        });
    }
    out
});

/// Fills each slot with a value that fits the words before it.
pub fn fill(t: &Template, rng: &mut impl Rng) -> String {
    let mut out = String::with_capacity(160);
    for (i, part) in t.parts.iter().enumerate() {
        out.push_str(part);
        if i + 1 == t.parts.len() {
            break;
        }
        let before = part.to_ascii_lowercase();
        let value = if before.ends_with("blk_") {
            format!("{}", rng.gen::<i64>())
        } else if before.ends_with("port ") || before.ends_with(':') {
            format!("{}", rng.gen_range(1024..65535))
        } else if before.contains("from ")
            || before.contains("rhost=")
            || before.ends_with('/')
            || before.contains(" to ")
        {
            format!(
                "10.{}.{}.{}",
                rng.gen_range(0..255),
                rng.gen_range(0..255),
                rng.gen_range(1..255)
            )
        } else if before.contains("user") {
            [
                "root", "admin", "deploy", "www-data", "guest", "alice", "bob",
            ][rng.gen_range(0..7)]
            .to_string()
        } else if before.contains("size") || before.contains("bytes") || before.contains("len") {
            format!("{}", rng.gen_range(0..67_108_864))
        } else if before.contains("time") || before.contains(" in ") || before.contains("took") {
            format!("{}", rng.gen_range(1..30_000))
        } else {
            match rng.gen_range(0..4) {
                0 => format!("{}", rng.gen_range(0..10_000)),
                1 => format!("{:08x}", rng.gen::<u32>()),
                2 => [
                    "/api/v1/orders",
                    "/var/log/app.log",
                    "/health",
                    "/etc/hosts",
                ][rng.gen_range(0..4)]
                .to_string(),
                _ => format!("E{}", rng.gen_range(100..600)),
            }
        };
        out.push_str(&value);
    }
    out
}
