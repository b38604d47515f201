//! PostgreSQL 15's standard settings (`pg15_settings.jsonl`, read from a PostgreSQL 15's own
//! `pg_settings`): their names, descriptions and defaults. A setting Timberline has no value
//! of its own for reads as PostgreSQL's default (`current_setting('default_tablespace')`,
//! `SHOW`), and `pg_settings` lists them all.

use std::sync::LazyLock;

use serde_json::Value;

const PG15_SETTINGS: &str = include_str!("pg15_settings.jsonl");

/// One standard setting, as PostgreSQL 15 describes it.
#[derive(Debug, Default)]
pub struct StandardSetting {
    pub name: String,
    pub unit: Option<String>,
    pub category: Option<String>,
    pub short_desc: Option<String>,
    pub extra_desc: Option<String>,
    pub context: Option<String>,
    pub vartype: Option<String>,
    pub min_val: Option<String>,
    pub max_val: Option<String>,
    pub enumvals: Option<Vec<String>>,
    pub boot_val: Option<String>,
}

static SETTINGS: LazyLock<Vec<StandardSetting>> = LazyLock::new(|| {
    PG15_SETTINGS
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            Some(StandardSetting {
                name: text("name")?,
                unit: text("unit"),
                category: text("category"),
                short_desc: text("short_desc"),
                extra_desc: text("extra_desc"),
                context: text("context"),
                vartype: text("vartype"),
                min_val: text("min_val"),
                max_val: text("max_val"),
                enumvals: v.get("enumvals").and_then(Value::as_array).map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                }),
                boot_val: text("boot_val"),
            })
        })
        .collect()
});

/// Every standard setting, in name order.
pub fn standard_settings() -> &'static [StandardSetting] {
    &SETTINGS
}

/// The standard setting called `name` (any case).
pub fn standard_setting(name: &str) -> Option<&'static StandardSetting> {
    SETTINGS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_standard_setting_is_read() {
        let all = super::standard_settings();
        assert_eq!(all.len(), 354);
        let keys = super::standard_setting("MAX_INDEX_KEYS").expect("max_index_keys");
        assert_eq!(keys.boot_val.as_deref(), Some("32"));
        assert!(super::standard_setting("default_tablespace").is_some());
    }
}
