//! PostgreSQL compatibility: the settings a session reports and changes, and the functions
//! drivers call (`version()`, `current_setting`, `set_config`, …), answered as PostgreSQL 16.6 would.

mod catalog_functions;
pub(crate) mod columnar;
mod datetime;
mod expand_array;
mod functions;
mod json;
mod like_escape;
mod number_format;
mod operators;
mod settings;
mod standard_settings;
mod text_functions;

pub use catalog_functions::catalog_function_udfs;
pub use datetime::{at_time_zone_udf, timestamp_text, timestamp_text_udf, to_char_udf};
pub use expand_array::expand_array_udf;
pub use functions::{
    advisory_unlock_all_udf, current_setting_udf, is_visible_udfs, pg_get_serial_sequence_udf,
    session_user_udf, set_config_udf, version_string, version_udf,
};
pub use json::json_build_object_udf;
pub use like_escape::{backslash_escaped, like_escape_udf};
pub use operators::PgOperatorPlanner;
pub use settings::{
    canonical_name, default_setting, parse_bytes, PgSession, SettingError, Tenant, PG_VERSION,
    PG_VERSION_NUM,
};
pub use standard_settings::{standard_setting, standard_settings, StandardSetting};
pub use text_functions::text_function_udfs;
