//! The shapes requests are measured by: OTLP's `ExportLogsServiceRequest` and
//! `ExportTraceServiceRequest` (protobuf and JSON),
//! Loki's `PushRequest` (protobuf) and push body (JSON, decoded as a generic value). Sizes are
//! the generated structs' own, so a shape follows the types it describes.

use std::mem::size_of;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};

use super::{Field, Kind, Shape, NODE_BYTES};
use crate::ingest::loki_push::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter};

const fn field(number: u32, names: &'static [&'static str], kind: Kind) -> Field {
    Field {
        number,
        names,
        kind,
        repeated: false,
        shared: false,
    }
}

const fn repeated(number: u32, names: &'static [&'static str], kind: Kind) -> Field {
    Field {
        repeated: true,
        ..field(number, names, kind)
    }
}

const fn shared(number: u32, names: &'static [&'static str], kind: Kind) -> Field {
    Field {
        shared: true,
        ..field(number, names, kind)
    }
}

const fn shape(size: usize, fields: &'static [Field]) -> Shape {
    Shape {
        size,
        record: false,
        buffered: false,
        fields,
    }
}

/// `ExportLogsServiceRequest`: each `LogRecord` is a record; its resource and scope are copied
/// into each record under them.
pub static OTLP_LOGS: Shape = shape(
    size_of::<ExportLogsServiceRequest>(),
    &[repeated(
        1,
        &["resourceLogs", "resource_logs"],
        Kind::Message(&RESOURCE_LOGS),
    )],
);

static RESOURCE_LOGS: Shape = shape(
    size_of::<ResourceLogs>(),
    &[
        shared(1, &["resource"], Kind::Message(&RESOURCE)),
        repeated(2, &["scopeLogs", "scope_logs"], Kind::Message(&SCOPE_LOGS)),
        field(3, &["schemaUrl", "schema_url"], Kind::Text),
    ],
);

static RESOURCE: Shape = shape(
    size_of::<Resource>(),
    &[
        repeated(1, &["attributes"], Kind::Message(&KEY_VALUE)),
        repeated(
            3,
            &["entityRefs", "entity_refs"],
            Kind::Message(&ENTITY_REF),
        ),
    ],
);

static ENTITY_REF: Shape = shape(
    size_of::<EntityRef>(),
    &[
        field(1, &["schemaUrl", "schema_url"], Kind::Text),
        field(2, &["type"], Kind::Text),
        repeated(3, &["idKeys", "id_keys"], Kind::Text),
        repeated(4, &["descriptionKeys", "description_keys"], Kind::Text),
    ],
);

static SCOPE_LOGS: Shape = shape(
    size_of::<ScopeLogs>(),
    &[
        shared(1, &["scope"], Kind::Message(&SCOPE)),
        repeated(
            2,
            &["logRecords", "log_records"],
            Kind::Message(&LOG_RECORD),
        ),
        field(3, &["schemaUrl", "schema_url"], Kind::Text),
    ],
);

static SCOPE: Shape = shape(
    size_of::<InstrumentationScope>(),
    &[
        field(1, &["name"], Kind::Text),
        field(2, &["version"], Kind::Text),
        repeated(3, &["attributes"], Kind::Message(&KEY_VALUE)),
    ],
);

static LOG_RECORD: Shape = Shape {
    record: true,
    ..shape(
        size_of::<LogRecord>(),
        &[
            field(3, &["severityText", "severity_text"], Kind::Text),
            field(5, &["body"], Kind::Message(&ANY_VALUE)),
            repeated(6, &["attributes"], Kind::Message(&KEY_VALUE)),
            field(9, &["traceId", "trace_id"], Kind::Text),
            field(10, &["spanId", "span_id"], Kind::Text),
            field(12, &["eventName", "event_name"], Kind::Text),
        ],
    )
};

/// `ExportTraceServiceRequest`: each `Span` is a record; its resource and scope are copied
/// into each record under them.
pub static OTLP_TRACES: Shape = shape(
    size_of::<ExportTraceServiceRequest>(),
    &[repeated(
        1,
        &["resourceSpans", "resource_spans"],
        Kind::Message(&RESOURCE_SPANS),
    )],
);

static RESOURCE_SPANS: Shape = shape(
    size_of::<ResourceSpans>(),
    &[
        shared(1, &["resource"], Kind::Message(&RESOURCE)),
        repeated(
            2,
            &["scopeSpans", "scope_spans"],
            Kind::Message(&SCOPE_SPANS),
        ),
        field(3, &["schemaUrl", "schema_url"], Kind::Text),
    ],
);

static SCOPE_SPANS: Shape = shape(
    size_of::<ScopeSpans>(),
    &[
        shared(1, &["scope"], Kind::Message(&SCOPE)),
        repeated(2, &["spans"], Kind::Message(&SPAN)),
        field(3, &["schemaUrl", "schema_url"], Kind::Text),
    ],
);

static SPAN: Shape = Shape {
    record: true,
    ..shape(
        size_of::<Span>(),
        &[
            field(1, &["traceId", "trace_id"], Kind::Text),
            field(2, &["spanId", "span_id"], Kind::Text),
            field(3, &["traceState", "trace_state"], Kind::Text),
            field(4, &["parentSpanId", "parent_span_id"], Kind::Text),
            field(5, &["name"], Kind::Text),
            repeated(9, &["attributes"], Kind::Message(&KEY_VALUE)),
            repeated(11, &["events"], Kind::Message(&SPAN_EVENT)),
            repeated(13, &["links"], Kind::Message(&SPAN_LINK)),
            field(15, &["status"], Kind::Message(&SPAN_STATUS)),
        ],
    )
};

static SPAN_EVENT: Shape = shape(
    size_of::<span::Event>(),
    &[
        field(2, &["name"], Kind::Text),
        repeated(3, &["attributes"], Kind::Message(&KEY_VALUE)),
    ],
);

static SPAN_LINK: Shape = shape(
    size_of::<span::Link>(),
    &[
        field(1, &["traceId", "trace_id"], Kind::Text),
        field(2, &["spanId", "span_id"], Kind::Text),
        field(3, &["traceState", "trace_state"], Kind::Text),
        repeated(4, &["attributes"], Kind::Message(&KEY_VALUE)),
    ],
);

static SPAN_STATUS: Shape = shape(size_of::<Status>(), &[field(2, &["message"], Kind::Text)]);

static KEY_VALUE: Shape = shape(
    size_of::<KeyValue>(),
    &[
        field(1, &["key"], Kind::Text),
        field(2, &["value"], Kind::Message(&ANY_VALUE)),
    ],
);

/// serde reads an `AnyValue` through `flatten`: its entries are held as generic content while
/// they are decoded.
static ANY_VALUE: Shape = Shape {
    buffered: true,
    ..shape(
        size_of::<AnyValue>(),
        &[
            field(1, &["stringValue", "string_value"], Kind::Text),
            field(
                5,
                &["arrayValue", "array_value"],
                Kind::Message(&ARRAY_VALUE),
            ),
            field(
                6,
                &["kvlistValue", "kvlist_value"],
                Kind::Message(&KEY_VALUE_LIST),
            ),
            field(7, &["bytesValue", "bytes_value"], Kind::Text),
        ],
    )
};

static ARRAY_VALUE: Shape = shape(
    size_of::<ArrayValue>(),
    &[repeated(1, &["values"], Kind::Message(&ANY_VALUE))],
);

static KEY_VALUE_LIST: Shape = shape(
    size_of::<KeyValueList>(),
    &[repeated(1, &["values"], Kind::Message(&KEY_VALUE))],
);

/// Loki's protobuf `PushRequest`: each entry is a record; its stream's labels are copied into
/// each.
pub static LOKI_PUSH: Shape = shape(
    size_of::<PushRequest>(),
    &[repeated(1, &["streams"], Kind::Message(&LOKI_STREAM))],
);

static LOKI_STREAM: Shape = shape(
    size_of::<StreamAdapter>(),
    &[
        shared(1, &["labels"], Kind::Text),
        repeated(2, &["entries"], Kind::Message(&LOKI_ENTRY)),
    ],
);

static LOKI_ENTRY: Shape = Shape {
    record: true,
    ..shape(
        size_of::<EntryAdapter>(),
        &[
            field(2, &["line"], Kind::Text),
            repeated(
                3,
                &["structuredMetadata", "structured_metadata"],
                Kind::Message(&LOKI_LABEL_PAIR),
            ),
        ],
    )
};

static LOKI_LABEL_PAIR: Shape = shape(
    size_of::<LabelPairAdapter>(),
    &[
        field(1, &["name"], Kind::Text),
        field(2, &["value"], Kind::Text),
    ],
);

/// Loki's JSON push, decoded whole as a generic value (measure it with one generic copy):
/// `{"streams":[{"stream":{labels},"values":[[ts, line, {meta}], …]}]}`, or the older
/// `{"labels":"{…}","entries":[{…}]}`. Each `values` or `entries` item is a record.
pub static LOKI_JSON: Shape = shape(
    NODE_BYTES,
    &[repeated(0, &["streams"], Kind::Message(&LOKI_JSON_STREAM))],
);

static LOKI_JSON_STREAM: Shape = shape(
    NODE_BYTES,
    &[
        shared(0, &["stream"], Kind::Any),
        shared(0, &["labels"], Kind::Text),
        repeated(0, &["values", "entries"], Kind::Message(&LOKI_JSON_ENTRY)),
    ],
);

static LOKI_JSON_ENTRY: Shape = Shape {
    record: true,
    ..shape(NODE_BYTES, &[])
};
